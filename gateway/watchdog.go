package gateway

import (
	"math"
	"sync"
	"time"
)

// reasonWriteTimeout is why a client that accepted nothing for the write
// timeout is dropped.
const reasonWriteTimeout = "write timeout"

// closePoll is how often a closing connection is looked at: whether the
// client still takes in what it was sent, and whether it has all of it.
const closePoll = 100 * time.Millisecond

// watchdog judges whether a session's client is still there, pings it, and
// bounds the close handshake. It runs on a timer, holding no goroutine
// between checks; drop is how it ends a client it gives up on.
//
// A client is alive while it is heard from (any frame, pongs included) or
// takes in data: one that reads slowly behind a backlog cannot answer a ping
// stuck behind that backlog, so its progress counts as the answer. While the
// socket holds data for it, it is judged by the write timeout alone, as a
// client that accepts nothing; else by pongWait.
type watchdog struct {
	wire         *wire
	interval     time.Duration // ping interval; 0 turns pings off
	writeTimeout time.Duration
	heard        func() time.Time // when the client was last heard from
	delivered    func()           // our close frame reached the client
	drop         func(reason string)

	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool
	poked    bool      // poked before start: the first look comes soon
	unsent   int       // what the socket held at the last check
	drained  time.Time // when the socket was first seen empty after our close frame
	nextPing time.Time
}

// pongWait is how long a client may go unheard before it is dropped: two
// ping intervals, so that one lost ping is not enough.
func pongWait(interval time.Duration) time.Duration { return 2 * interval }

// start begins watching. With pings off, the watchdog only wakes for the
// close handshake.
func (d *watchdog) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextPing = time.Now().Add(d.interval)
	first := d.interval
	switch {
	case d.poked:
		first = closePoll
	case first <= 0:
		first = math.MaxInt64 // only a poke wakes it
	}
	d.timer = time.AfterFunc(first, d.tick)
}

// poke makes the watchdog look soon: a close frame was asked for or sent.
// A poke before start is kept for it: a child that exits at once can have
// its close frame written before the session's goroutine starts the
// watchdog, and without its poke the close would wait for the first ping.
func (d *watchdog) poke() {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.stopped:
	case d.timer == nil:
		d.poked = true
	default:
		d.timer.Reset(closePoll)
	}
}

// stop ends the watching; a check under way may still finish.
func (d *watchdog) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
}

func (d *watchdog) tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	next, reason := d.check(time.Now())
	if reason != "" {
		d.stopped = true
		d.drop(reason)
		return
	}
	if next > 0 {
		d.timer.Reset(next)
	}
}

// check looks at the client at now and returns when to look next (0: only
// when poked), or why to drop it.
func (d *watchdog) check(now time.Time) (time.Duration, string) {
	unsent, known := d.wire.acknowledge()
	if known && unsent < d.unsent {
		d.wire.progressed(now) // the client took in what the socket held
	}
	d.unsent = unsent
	stalled := now.Sub(d.wire.lastProgress()) >= d.writeTimeout
	switch {
	case d.wire.closeWritten.Load():
		return d.checkClosing(now, unsent, stalled)
	case !d.wire.closeAsked().IsZero():
		if now.Sub(d.wire.closeAsked()) >= controlWriteWait {
			return 0, "client did not take the close frame"
		}
		return closePoll, ""
	}
	backlog := unsent > 0 || d.wire.busy.Load()
	switch {
	case backlog && stalled:
		return 0, reasonWriteTimeout
	case d.interval <= 0:
		return 0, ""
	case !backlog && now.Sub(d.lastHeard()) >= pongWait(d.interval):
		return 0, "ping timeout"
	}
	if !now.Before(d.nextPing) {
		d.wire.control(controlFrame(opPing, nil))
		d.nextPing = now.Add(d.interval)
	}
	next := d.nextPing.Sub(now)
	if !backlog { // look again right when the client would be overdue
		next = min(next, d.lastHeard().Add(pongWait(d.interval)).Sub(now)+time.Millisecond)
	}
	return next, ""
}

// checkClosing bounds the time after our close frame was written. After
// the child's exit, the client gets what it needs to take in the rest while
// it makes progress; a close that jumped ahead of the data (shutdown, an
// error) must be taken in, whatever was in the socket before it, within
// controlWriteWait of being asked for, so that shutdown keeps its bound. Then
// the client has closeWait to answer.
func (d *watchdog) checkClosing(now time.Time, unsent int, stalled bool) (time.Duration, string) {
	if unsent > 0 {
		d.drained = time.Time{}
		urgent := d.wire.urgentSince()
		switch {
		case !urgent.IsZero() && now.Sub(urgent) >= controlWriteWait:
			return 0, "client did not take the close frame"
		case stalled:
			return 0, "client stopped reading"
		}
		return closePoll, ""
	}
	if d.drained.IsZero() {
		d.drained = now
		d.delivered()
	}
	if now.Sub(d.drained) >= closeWait {
		return 0, "no answer to the close frame"
	}
	return closePoll, ""
}

// lastHeard is when the client was last heard from or took in data.
func (d *watchdog) lastHeard() time.Time {
	heard, progress := d.heard(), d.wire.lastProgress()
	if progress.After(heard) {
		return progress
	}
	return heard
}
