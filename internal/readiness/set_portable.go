//go:build unix && (!linux || wsgate_portable)

package readiness

import (
	"sync"
	"syscall"

	"github.com/wsgate/wsgate/internal/pollnow"
)

// Set is the watched sockets. Its methods, and those of its watches, are
// safe to call from any goroutine.
//
// Without an epoll set, each armed watch waits in the runtime's poller on
// a goroutine of its own (Watch.wait), which ends once its socket has data,
// has hung up or failed, or is closed: the set owns these goroutines, each
// until its socket says something. The socket is not read meanwhile: the
// goroutine holds the socket's read side while it waits, and gives it up
// before the callback runs, so the callback's reader never waits on it.
type Set struct {
	mu      sync.Mutex
	watches map[uint64]*Watch
	next    uint64
	closed  bool // callbacks no longer run
}

// NewSet returns an empty set. Close forgets its watches.
func NewSet() (*Set, error) {
	return &Set{watches: make(map[uint64]*Watch)}, nil
}

// Close makes sure no callback runs after it; watches still armed are
// forgotten, their goroutines end when their sockets are ready or closed.
func (s *Set) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Watch adds the socket behind rc to the set, not yet armed: ready will
// run once the watch is armed and the socket has data, has hung up or has
// failed. ready runs on the watch's goroutine, or on Fire's caller: it must
// not block (start a goroutine to read).
func (s *Set) Watch(rc syscall.RawConn, ready func()) *Watch {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	w := &Watch{set: s, rc: rc, token: s.next, ready: ready}
	s.watches[w.token] = w
	return w
}

// Watch is one socket in a set.
type Watch struct {
	set   *Set
	rc    syscall.RawConn
	token uint64
	ready func()

	mu      sync.Mutex
	armed   bool // ready runs at the next event, or Fire
	waiting bool // the watch's goroutine is waiting on the socket
	removed bool
}

// Arm has ready run, once, when the socket has data to read, has hung up
// or has failed; at once if it has already. It fails when the socket is
// closed, or the watch removed: then ready will not run.
func (w *Watch) Arm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.removed {
		return ErrRemoved
	}
	if err := w.rc.Control(func(uintptr) {}); err != nil { // closed
		return err
	}
	w.armed = true
	if !w.waiting {
		w.waiting = true
		go w.wait()
	}
	return nil
}

// wait is the goroutine of an armed watch: it waits in the runtime's poller
// until the socket is ready or closed, then fires the watch.
func (w *Watch) wait() {
	_ = w.rc.Read(readableNow) // an error is a closed socket: fire, for ready to find it so
	w.mu.Lock()
	w.waiting = false
	w.mu.Unlock()
	w.fire()
}

// readableNow reports whether fd has data, has hung up or has failed; when
// it has not, the runtime's poller waits until it has.
func readableNow(fd uintptr) bool {
	revents, err := pollnow.Events(fd, pollnow.In|pollnow.RdHup)
	return err != nil || revents != 0
}

// Fire runs ready now if the watch is armed, as if the socket had become
// ready. It is for a socket just closed, as on Linux (set_epoll.go).
func (w *Watch) Fire() { w.fire() }

// fire runs ready if the watch is armed and the set open, and disarms it.
func (w *Watch) fire() {
	w.mu.Lock()
	armed := w.armed
	w.armed = false
	w.mu.Unlock()
	w.set.mu.Lock()
	closed := w.set.closed
	w.set.mu.Unlock()
	if armed && !closed {
		w.ready()
	}
}

// Remove takes the socket out of the set; ready does not run afterwards,
// unless it is running already. A goroutine still waiting on the socket
// ends when the socket is ready or closed. It is idempotent.
func (w *Watch) Remove() {
	w.mu.Lock()
	w.removed, w.armed = true, false
	w.mu.Unlock()
	w.set.mu.Lock()
	delete(w.set.watches, w.token)
	w.set.mu.Unlock()
}
