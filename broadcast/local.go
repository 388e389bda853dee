package broadcast

import (
	"context"
	"errors"
	"sync"
)

// Local is the Bus of an instance on its own, so that a program sees one
// Bus whether or not it shares its streams: a stream has no other party, so
// this instance leads it from the start, what its subscribers send goes to
// its own source (Handler.Input), the audience is whether it has
// subscribers, and Publish has nobody else to tell. Every Attach makes a
// stream of its own: the caller attaches a key again only once it has
// closed its link to it, or is letting it end.
//
// The zero Local is ready to use.
type Local struct{}

var _ Bus = Local{}

// errLinkClosed reports a Send on a link closed before it was delivered.
var errLinkClosed = errors.New("link closed")

// Attach returns a link that leads the stream at once, with nothing to
// replay, in a new epoch. It never fails.
func (Local) Attach(_ context.Context, _ string, h Handler) (Link, Attachment, error) {
	l := &localLink{
		h:       h,
		started: make(chan struct{}),
		closing: make(chan struct{}),
		present: true, // Attach makes the instance present
		told:    true, // the handler takes the instance as present from Attach on
	}
	return l, Attachment{Lead: true, Epoch: NewEpoch()}, nil
}

// localLink is the link of a stream with no other party. Its one goroutine,
// tellAudience, runs only while a change of presence is left to tell the
// handler: started by Start or SetPresent, it ends by itself. Close stops it
// telling more but cannot wait for it: Close may be called with locks held
// that the handler's Audience takes.
type localLink struct {
	h       Handler
	started chan struct{} // closed by Start
	closing chan struct{} // closed by Close

	mu      sync.Mutex
	closed  bool
	present bool // the instance has subscribers
	told    bool // the presence as last told to the handler
	telling bool // tellAudience runs

	pubMu sync.Mutex
	seq   uint64 // the last number given; pubMu's
}

// Start lets the link call its handler.
func (l *localLink) Start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.started:
	default:
		close(l.started)
	}
	l.tellLocked()
}

// Publish has no other party to send to: it numbers the messages.
func (l *localLink) Publish(msgs []*Message) error {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	for _, m := range msgs {
		if !m.Last {
			l.seq++
			m.Seq = l.seq
		}
	}
	return nil
}

// Send gives p to the handler's Input, once the link has started: this
// instance leads, so the input is its own source's.
func (l *localLink) Send(ctx context.Context, p []byte) error {
	select {
	case <-l.started:
	case <-l.closing:
		return errLinkClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-l.closing:
		return errLinkClosed
	default:
	}
	l.h.Input(p)
	return nil
}

// SetPresent records whether the instance has subscribers; the handler is
// told the audience (1 or 0) soon, from another goroutine.
func (l *localLink) SetPresent(present bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.present = present
	l.tellLocked()
}

// Close detaches the link: the handler is told nothing more.
func (l *localLink) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.closing)
	}
}

// tellLocked starts tellAudience when the presence changed since it was
// last told, the link has started, and no teller runs; l.mu is held.
func (l *localLink) tellLocked() {
	select {
	case <-l.started:
	default:
		return
	}
	if l.closed || l.telling || l.present == l.told {
		return
	}
	l.telling = true
	go l.tellAudience()
}

// tellAudience tells the handler each change of presence, in order, with no
// lock held, until none is left to tell or the link is closed.
func (l *localLink) tellAudience() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.closed && l.present != l.told {
		l.told = l.present
		instances := 0
		if l.told {
			instances = 1
		}
		l.mu.Unlock()
		l.h.Audience(instances)
		l.mu.Lock()
	}
	l.telling = false
}
