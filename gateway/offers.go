package gateway

import (
	"net/http"

	"github.com/wsgate/wsgate/internal/httppolicy"
)

// offersForGorilla returns the handshake request as gorilla is to see it:
// under --compress, with only the permessage-deflate offer it can accept
// as it is (httppolicy.DeflateOffers).
func (g *Gateway) offersForGorilla(r *http.Request, c httppolicy.Client) *http.Request {
	if !g.cfg.Compress {
		return r
	}
	seen, declined := httppolicy.DeflateOffers(r)
	if declined != nil {
		g.log.Debug("permessage-deflate offer declined", "remote", c.Addr, "err", declined)
	}
	return seen
}
