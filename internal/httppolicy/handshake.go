package httppolicy

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/wsgate/wsgate/internal/frames"
)

// A HandshakeError is a WebSocket handshake an upgrader would refuse: its
// HTTP status, reason, and the headers of the answer.
type HandshakeError struct {
	Status int
	Reason string
	Header http.Header
}

func (e *HandshakeError) Error() string { return e.Reason }

// CheckHandshake returns the refusal of a handshake that the upgrade would
// refuse, so that it is refused before anything is started or held for it:
// the checks of RFC 6455 section 4.2.1 that gorilla makes, with its
// statuses; nil when the handshake is valid.
func CheckHandshake(r *http.Request) *HandshakeError {
	switch {
	case r.Method != http.MethodGet:
		return &HandshakeError{Status: http.StatusMethodNotAllowed, Reason: "websocket: the handshake must be a GET request"}
	case r.Header.Get("Sec-Websocket-Version") != "13":
		return &HandshakeError{Status: http.StatusBadRequest, Reason: "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
			Header: http.Header{"Sec-Websocket-Version": {"13"}}}
	case !validChallengeKey(r.Header.Get("Sec-Websocket-Key")):
		return &HandshakeError{Status: http.StatusBadRequest, Reason: "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length"}
	}
	return nil
}

// validChallengeKey reports whether key is the base64 of 16 bytes (RFC 6455
// section 4.1).
func validChallengeKey(key string) bool {
	decoded, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(decoded) == 16
}

// extensionsHeader is the handshake header of extension offers.
const extensionsHeader = "Sec-WebSocket-Extensions"

// DeflateOffers returns the handshake request as an upgrader that accepts
// any permessage-deflate offer as it is (gorilla) is to see it: gorilla
// answers with "server_no_context_takeover; client_no_context_takeover"
// alone, which RFC 7692 allows only for an offer it can accept so. So it
// sees one plain offer when one of the client's can be accepted so
// (frames.DeflateOffered), and none otherwise, and declines. The request
// itself, which the child's environment is made from, is not changed. The
// error says why offers were declined, if they were.
func DeflateOffers(r *http.Request) (*http.Request, error) {
	values := r.Header.Values(extensionsHeader)
	if len(values) == 0 {
		return r, nil
	}
	accept, err := frames.DeflateOffered(values)
	if err != nil {
		err = fmt.Errorf("offer %s: %w", strings.Join(values, ", "), err)
	}
	seen := r.WithContext(r.Context())
	seen.Header = r.Header.Clone()
	seen.Header.Del(extensionsHeader)
	if accept {
		seen.Header.Set(extensionsHeader, "permessage-deflate")
	}
	return seen, err
}
