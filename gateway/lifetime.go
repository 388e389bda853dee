package gateway

import (
	"github.com/wsgate/wsgate/internal/wsconn"
)

// startLifetime starts the bounds in time of s: --maxlifetime,
// --idletimeout and its token's expiry (wsconn.Lifetime).
func (s *session) startLifetime() {
	bounds := wsconn.Bounds{MaxLifetime: s.gw.cfg.MaxLifetime, IdleTimeout: s.gw.cfg.IdleTimeout, Expires: s.req.identity.Expires}
	log := s.log
	s.life = wsconn.StartLifetime(bounds, s.start, s.dataMessages, func(code int, reason string) {
		log.Info("closing the session: "+reason, "remote", s.remote)
		s.closeWith(code, reason)
	})
}

// dataMessages counts the data messages that went either way so far.
func (s *session) dataMessages() int64 { return s.msgsIn.Load() + s.msgsOut.Load() }
