package wsconn

import (
	"math"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/frames"
)

// ReasonWriteTimeout is why a client that accepted nothing for the write
// timeout is dropped.
const ReasonWriteTimeout = "write timeout"

// ClosePoll is how often a closing connection is looked at: whether the
// client still takes in what it was sent, and whether it has all of it.
const ClosePoll = 100 * time.Millisecond

// Watchdog judges whether a session's client is still there, pings it, and
// bounds the close handshake. It runs on a timer, holding no goroutine
// between checks; drop is how it ends a client it gives up on.
//
// A client is alive while it is heard from (any frame, pongs included) or
// takes in data: one that reads slowly behind a backlog cannot answer a ping
// stuck behind that backlog, so its progress counts as the answer. While the
// socket holds data for it, it is judged by the write timeout alone, as a
// client that accepts nothing; else by pongWait.
type Watchdog struct {
	Wire           *Wire
	Interval       time.Duration // ping interval; 0 turns pings off
	WriteTimeout   time.Duration
	Heard          func() time.Time // when the client was last heard from
	CloseDelivered func()           // our close frame reached the client
	Drop           func(reason string)

	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool
	poked    bool      // poked before start: the first look comes soon
	unsent   int       // what the socket held at the last check
	drained  time.Time // when the socket was first seen empty after our close frame
	nextPing time.Time
}

// Timeouts of the close handshake.
const (
	// CloseWait is how long a peer has to answer our close frame before the
	// TCP connection is closed anyway; the contract is "within a second".
	CloseWait = time.Second
	// ControlWriteWait bounds how long a close frame we start (shutdown,
	// refusal, a client's error) may wait to be taken by the client.
	ControlWriteWait = time.Second
)

// pongWait is how long a client may go unheard before it is dropped: two
// ping intervals, so that one lost ping is not enough.
func pongWait(interval time.Duration) time.Duration { return 2 * interval }

// Start begins watching. With pings off, the watchdog only wakes for the
// close handshake.
func (d *Watchdog) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextPing = time.Now().Add(d.Interval)
	first := d.Interval
	switch {
	case d.poked:
		first = ClosePoll
	case first <= 0:
		first = math.MaxInt64 // only a poke wakes it
	}
	d.timer = time.AfterFunc(first, d.tick)
}

// Poke makes the watchdog look soon: a close frame was asked for or sent.
// A Poke before start is kept for it: a child that exits at once can have
// its close frame written before the session's goroutine starts the
// watchdog, and without its Poke the close would wait for the first ping.
func (d *Watchdog) Poke() {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.stopped:
	case d.timer == nil:
		d.poked = true
	default:
		d.timer.Reset(ClosePoll)
	}
}

// Stop ends the watching; a check under way may still finish.
func (d *Watchdog) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
}

func (d *Watchdog) tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	next, reason := d.check(time.Now())
	if reason != "" {
		d.stopped = true
		d.Drop(reason)
		return
	}
	if next > 0 {
		d.timer.Reset(next)
	}
}

// check looks at the client at now and returns when to look next (0: only
// when poked), or why to drop it.
func (d *Watchdog) check(now time.Time) (time.Duration, string) {
	unsent, known := d.Wire.Acknowledge()
	if known && unsent < d.unsent {
		d.Wire.progressed(now) // the client took in what the socket held
	}
	d.unsent = unsent
	stalled := now.Sub(d.Wire.lastProgress()) >= d.WriteTimeout
	switch {
	case d.Wire.closeWritten.Load():
		return d.checkClosing(now, unsent, stalled)
	case !d.Wire.closeAsked().IsZero():
		if now.Sub(d.Wire.closeAsked()) >= ControlWriteWait {
			return 0, "client did not take the close frame"
		}
		return ClosePoll, ""
	}
	backlog := unsent > 0 || d.Wire.busy.Load()
	switch {
	case backlog && stalled:
		return 0, ReasonWriteTimeout
	case d.Interval <= 0:
		return 0, ""
	case !backlog && now.Sub(d.lastHeard()) >= pongWait(d.Interval):
		return 0, "ping timeout"
	}
	if !now.Before(d.nextPing) {
		d.Wire.Control(frames.ControlFrame(frames.OpPing, nil))
		d.nextPing = now.Add(d.Interval)
	}
	next := d.nextPing.Sub(now)
	if !backlog { // look again right when the client would be overdue
		next = min(next, d.lastHeard().Add(pongWait(d.Interval)).Sub(now)+time.Millisecond)
	}
	return next, ""
}

// checkClosing bounds the time after our close frame was written. After
// the child's exit, the client gets what it needs to take in the rest while
// it makes progress; a close that jumped ahead of the data (shutdown, an
// error) must be taken in, whatever was in the socket before it, within
// ControlWriteWait of being asked for, so that shutdown keeps its bound. Then
// the client has CloseWait to answer.
func (d *Watchdog) checkClosing(now time.Time, unsent int, stalled bool) (time.Duration, string) {
	if unsent > 0 {
		d.drained = time.Time{}
		urgent := d.Wire.urgentSince()
		switch {
		case !urgent.IsZero() && now.Sub(urgent) >= ControlWriteWait:
			return 0, "client did not take the close frame"
		case stalled:
			return 0, "client stopped reading"
		}
		return ClosePoll, ""
	}
	if d.drained.IsZero() {
		d.drained = now
		d.CloseDelivered()
	}
	if now.Sub(d.drained) >= CloseWait {
		return 0, "no answer to the close frame"
	}
	return ClosePoll, ""
}

// lastHeard is when the client was last heard from or took in data.
func (d *Watchdog) lastHeard() time.Time {
	heard, progress := d.Heard(), d.Wire.lastProgress()
	if progress.After(heard) {
		return progress
	}
	return heard
}
