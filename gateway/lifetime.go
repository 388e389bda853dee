package gateway

import (
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Close reasons of a session that reached one of its bounds.
const (
	reasonLifetime     = "session lifetime reached"
	reasonIdle         = "idle"
	reasonTokenExpired = "token expired"
)

// idleLooks is how many times per IdleTimeout the lifetime looks whether
// data moved: a session is closed between IdleTimeout and 1.25 times it
// after its last data message, never before.
const idleLooks = 4

// lifetime closes a session at the first of its bounds: its age
// (MaxLifetime, 1001), its token's expiry (1008, at exp, never before), and
// a stretch with no data message either way (IdleTimeout, 1001). It runs
// on a timer, holding no goroutine between looks; the session's close
// frame and the stop sequence that follows are the session's own, as when
// the gateway shuts down.
type lifetime struct {
	s      *session
	log    *slog.Logger // the session's, as it was when the lifetime began
	end    time.Time    // when the session must end; zero for never
	code   int          // the close code at end
	reason string       // the close reason at end
	idle   time.Duration

	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool
	moved    int64     // data messages counted at the last look
	activeAt time.Time // when data was last seen to have moved
}

// startLifetime starts the bounds cfg and the token's expiry (zero for
// none) set on s; it returns nil when there are none.
func startLifetime(s *session, cfg Config, expires time.Time) *lifetime {
	if cfg.MaxLifetime <= 0 && cfg.IdleTimeout <= 0 && expires.IsZero() {
		return nil
	}
	l := &lifetime{s: s, log: s.log, idle: cfg.IdleTimeout, activeAt: s.start}
	if cfg.MaxLifetime > 0 {
		l.end, l.code, l.reason = s.start.Add(cfg.MaxLifetime), websocket.CloseGoingAway, reasonLifetime
	}
	if !expires.IsZero() && (l.end.IsZero() || !expires.After(l.end)) {
		l.end, l.code, l.reason = expires, websocket.ClosePolicyViolation, reasonTokenExpired
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = time.AfterFunc(l.next(s.start), l.look)
	return l
}

// next is how long from now until the next look.
func (l *lifetime) next(now time.Time) time.Duration {
	wait := time.Duration(1<<63 - 1)
	if !l.end.IsZero() {
		wait = l.end.Sub(now)
	}
	if l.idle > 0 {
		wait = min(wait, l.idle/idleLooks)
	}
	return wait
}

// look closes the session if a bound is reached, else looks again later.
func (l *lifetime) look() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	now := time.Now()
	if moved := l.s.dataMessages(); moved != l.moved {
		l.moved, l.activeAt = moved, now
	}
	switch {
	case !l.end.IsZero() && !now.Before(l.end):
		l.close(l.code, l.reason)
	case l.idle > 0 && now.Sub(l.activeAt) >= l.idle:
		l.close(websocket.CloseGoingAway, reasonIdle)
	default:
		l.timer.Reset(l.next(now))
	}
}

// close ends the session with code and reason; l.mu is held.
func (l *lifetime) close(code int, reason string) {
	l.stopped = true
	l.log.Info("closing the session: "+reason, "remote", l.s.remote)
	l.s.closeWith(code, reason)
}

// stop ends the looking; a nil lifetime has none.
func (l *lifetime) stop() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	l.timer.Stop()
}

// dataMessages counts the data messages that went either way so far.
func (s *session) dataMessages() int64 { return s.msgsIn.Load() + s.msgsOut.Load() }
