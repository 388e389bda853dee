package gateway

import (
	"net/http"
	"strings"

	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/httppolicy"
)

// extensionsHeader is the handshake header of extension offers.
const extensionsHeader = "Sec-WebSocket-Extensions"

// offersForGorilla returns the handshake request as gorilla is to see it
// under --compress. gorilla accepts any permessage-deflate offer, whatever
// its parameters, and answers with "server_no_context_takeover;
// client_no_context_takeover" alone, which RFC 7692 allows only for an offer
// it can accept as it is: so gorilla sees one plain offer when one of the
// client's can be accepted so (frames.DeflateOffered), and none otherwise,
// and declines. The request itself, which the child's environment is made
// from, is not changed.
func (g *Gateway) offersForGorilla(r *http.Request, c httppolicy.Client) *http.Request {
	values := r.Header.Values(extensionsHeader)
	if !g.cfg.Compress || len(values) == 0 {
		return r
	}
	accept, err := frames.DeflateOffered(values)
	if err != nil {
		g.log.Debug("permessage-deflate offer declined", "remote", c.Addr, "offer", strings.Join(values, ", "), "err", err)
	}
	seen := r.WithContext(r.Context())
	seen.Header = r.Header.Clone()
	seen.Header.Del(extensionsHeader)
	if accept {
		seen.Header.Set(extensionsHeader, "permessage-deflate")
	}
	return seen
}
