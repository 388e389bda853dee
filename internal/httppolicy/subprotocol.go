package httppolicy

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Subprotocols are the subprotocols a gateway serves; nil serves none and
// ignores what clients offer.
type Subprotocols []string

// NewSubprotocols checks that every entry is a token, as the
// Sec-WebSocket-Protocol header needs.
func NewSubprotocols(list []string) (Subprotocols, error) {
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

// Choose returns the subprotocol to answer r with: the first the client
// offers that is served. It reports false for a client that offers
// subprotocols none of which is served; one that offers none gets "".
func (s Subprotocols) Choose(r *http.Request) (string, bool) {
	if s == nil {
		return "", true
	}
	offered := Offered(r)
	for _, p := range offered {
		if slices.Contains(s, p) {
			return p, true
		}
	}
	return "", len(offered) == 0
}

// Offered returns the subprotocols r offers, in its order of
// preference, from every Sec-WebSocket-Protocol header.
func Offered(r *http.Request) []string {
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
