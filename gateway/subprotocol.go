package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// subprotocols are the subprotocols a gateway serves (Config.Subprotocols);
// nil serves none and ignores what clients offer.
type subprotocols []string

// newSubprotocols checks that every entry is a token, as the
// Sec-WebSocket-Protocol header needs.
func newSubprotocols(list []string) (subprotocols, error) {
	if len(list) == 0 {
		return nil, nil
	}
	for _, p := range list {
		if !isToken(p) {
			return nil, fmt.Errorf("subprotocol %q is not a token (letters, digits and !#$%%&'*+-.^_`|~)", p)
		}
	}
	return list, nil
}

// choose returns the subprotocol to answer r with: the first the client
// offers that is served. It reports false for a client that offers
// subprotocols none of which is served; one that offers none gets "".
func (s subprotocols) choose(r *http.Request) (string, bool) {
	if s == nil {
		return "", true
	}
	offered := offeredSubprotocols(r)
	for _, p := range offered {
		if slices.Contains(s, p) {
			return p, true
		}
	}
	return "", len(offered) == 0
}

// offeredSubprotocols returns the subprotocols r offers, in its order of
// preference, from every Sec-WebSocket-Protocol header.
func offeredSubprotocols(r *http.Request) []string {
	var offered []string
	for _, value := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				offered = append(offered, p)
			}
		}
	}
	return offered
}

// handshakeHeader returns the headers of the handshake response, naming
// protocol when one was chosen. gorilla answers with the
// Sec-WebSocket-Protocol it finds there.
func (g *Gateway) handshakeHeader(protocol string) http.Header {
	if g.protocols == nil {
		return g.wsHeaders
	}
	h := g.wsHeaders.Clone()
	h.Del("Sec-WebSocket-Protocol") // --header-ws must not name one the client did not offer
	if protocol != "" {
		h.Set("Sec-WebSocket-Protocol", protocol)
	}
	return h
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
