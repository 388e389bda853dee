package httppolicy

import "net/http"

// Headers are the headers an operator adds to responses: All to every
// response (--header), Handshake to handshake responses (--header-ws) and
// Plain to all others (--header-http).
type Headers struct {
	All, Handshake, Plain http.Header

	handshake http.Header // All and Handshake together, as gorilla writes them
}

// NewHeaders returns the headers to add, with those of a handshake response
// gathered once.
func NewHeaders(all, handshake, plain http.Header) *Headers {
	h := &Headers{All: all, Handshake: handshake, Plain: plain, handshake: http.Header{}}
	for _, set := range []http.Header{all, handshake} {
		for name, values := range set {
			h.handshake[name] = append(h.handshake[name], values...)
		}
	}
	return h
}

// AddTo adds the headers of set to w's.
func AddTo(w http.ResponseWriter, set http.Header) {
	for name, values := range set {
		for _, v := range values {
			w.Header().Add(name, v)
		}
	}
}

// ForHandshake returns the headers of a handshake response, naming
// protocol when one was chosen, when subprotocols are negotiated: gorilla
// answers with the Sec-WebSocket-Protocol it finds there, and --header-ws
// must not name one the client did not offer. The result is not to be
// changed.
func (h *Headers) ForHandshake(protocol string, negotiated bool) http.Header {
	if !negotiated {
		return h.handshake
	}
	out := h.handshake.Clone()
	out.Del("Sec-WebSocket-Protocol")
	if protocol != "" {
		out.Set("Sec-WebSocket-Protocol", protocol)
	}
	return out
}
