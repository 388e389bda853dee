package wsconn

import (
	"sync"
	"time"
)

// Close reasons of a session that reached one of its bounds.
const (
	ReasonLifetime     = "session lifetime reached"
	ReasonIdle         = "idle"
	ReasonTokenExpired = "token expired"
)

// idleLooks is how many times per IdleTimeout the lifetime looks whether
// data moved: a session is closed between IdleTimeout and 1.25 times it
// after its last data message, never before.
const idleLooks = 4

// Lifetime closes a session at the first of its bounds: its age
// (MaxLifetime, 1001), its token's expiry (1008, at exp, never before), and
// a stretch with no data message either way (IdleTimeout, 1001). It runs
// on a timer, holding no goroutine between looks; the close frame and what
// follows are the session's own (Close), as when the server shuts down.
type Lifetime struct {
	end    time.Time // when the session must end; zero for never
	code   int       // the close code at end
	reason string    // the close reason at end
	idle   time.Duration
	moved  func() int64 // data messages so far, either way
	closer func(code int, reason string)

	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool
	last     int64     // data messages counted at the last look
	activeAt time.Time // when data was last seen to have moved
}

// Bounds are a session's bounds in time; the zero value of each is none.
type Bounds struct {
	MaxLifetime time.Duration
	IdleTimeout time.Duration
	Expires     time.Time // its token's expiry
}

// StartLifetime starts the bounds b of a session that began at start:
// moved counts its data messages either way, and close ends it. It returns
// nil when there are no bounds.
func StartLifetime(b Bounds, start time.Time, moved func() int64, close func(code int, reason string)) *Lifetime {
	if b.MaxLifetime <= 0 && b.IdleTimeout <= 0 && b.Expires.IsZero() {
		return nil
	}
	l := &Lifetime{idle: b.IdleTimeout, activeAt: start, moved: moved, closer: close}
	if b.MaxLifetime > 0 {
		l.end, l.code, l.reason = start.Add(b.MaxLifetime), 1001, ReasonLifetime
	}
	if !b.Expires.IsZero() && (l.end.IsZero() || !b.Expires.After(l.end)) {
		l.end, l.code, l.reason = b.Expires, 1008, ReasonTokenExpired
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = time.AfterFunc(l.next(start), l.look)
	return l
}

// next is how long from now until the next look.
func (l *Lifetime) next(now time.Time) time.Duration {
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
func (l *Lifetime) look() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	now := time.Now()
	if moved := l.moved(); moved != l.last {
		l.last, l.activeAt = moved, now
	}
	switch {
	case !l.end.IsZero() && !now.Before(l.end):
		l.close(l.code, l.reason)
	case l.idle > 0 && now.Sub(l.activeAt) >= l.idle:
		l.close(1001, ReasonIdle)
	default:
		l.timer.Reset(l.next(now))
	}
}

// close ends the session with code and reason; l.mu is held.
func (l *Lifetime) close(code int, reason string) {
	l.stopped = true
	l.closer(code, reason)
}

// Stop ends the looking; a nil Lifetime has none.
func (l *Lifetime) Stop() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	l.timer.Stop()
}
