//go:build linux && !wsgate_portable

package readiness

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// eventsPerWait is how many ready sockets one epoll_wait returns at most.
const eventsPerWait = 128

// Set is an epoll set of watched sockets, and the goroutine that calls
// their callbacks. Its methods, and those of its watches, are safe to call
// from any goroutine.
type Set struct {
	file *os.File        // the epoll instance, for the runtime's poller
	rc   syscall.RawConn // file's
	epfd int

	mu      sync.Mutex
	watches map[uint64]*Watch
	next    uint64

	events []syscall.EpollEvent // the dispatcher's own
	done   chan struct{}        // closed when the dispatcher has returned
}

// NewSet returns an empty set, its dispatcher running. Close stops it.
func NewSet() (*Set, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("readiness: epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller:
	// an epoll instance is readable while any of its sockets is ready.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("readiness: %w", err)
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	// A file the poller could not take has no deadlines; waiting on it
	// would block a thread, or spin.
	if err := file.SetReadDeadline(time.Time{}); err != nil {
		file.Close()
		return nil, fmt.Errorf("readiness: the runtime's poller cannot wait on an epoll set: %w", err)
	}
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("readiness: %w", err)
	}
	s := &Set{
		file:    file,
		rc:      rc,
		epfd:    epfd,
		watches: make(map[uint64]*Watch),
		events:  make([]syscall.EpollEvent, eventsPerWait),
		done:    make(chan struct{}),
	}
	go s.dispatcher()
	return s, nil
}

// Close stops the dispatcher and waits for it to return. Callbacks do not
// run after it; watches still armed are forgotten.
func (s *Set) Close() error {
	err := s.file.Close()
	<-s.done
	return err
}

// dispatcher waits until sockets are ready and calls their callbacks,
// until the set is closed.
func (s *Set) dispatcher() {
	defer close(s.done)
	for {
		if err := s.rc.Read(s.dispatch); err != nil {
			return // closed
		}
	}
}

// dispatch takes the ready sockets the set holds, without waiting, and
// calls their callbacks; it reports false when there were none, for the
// poller to wait. A socket that becomes ready afterwards makes the set
// readable again, so none is missed between the two.
func (s *Set) dispatch(epfd uintptr) bool {
	n, err := syscall.EpollWait(int(epfd), s.events, 0)
	switch {
	case err == syscall.EINTR:
		return true
	case err != nil || n == 0:
		return false
	}
	for _, ev := range s.events[:n] {
		s.mu.Lock()
		w := s.watches[tokenOf(ev)]
		s.mu.Unlock()
		if w != nil {
			w.fire()
		}
	}
	return true
}

// Watch adds the socket behind rc to the set, not yet armed: ready will
// run once the watch is armed and the socket has data, has hung up or has
// failed. ready runs on the set's goroutine, or on Fire's caller: it must
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
	added   bool // the socket is in the epoll set
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
	op := syscall.EPOLL_CTL_MOD
	if !w.added {
		op = syscall.EPOLL_CTL_ADD
	}
	ev := eventFor(w.token)
	var ctlErr error
	err := w.rc.Control(func(fd uintptr) {
		ctlErr = syscall.EpollCtl(w.set.epfd, op, int(fd), &ev)
	})
	if err == nil && ctlErr != nil {
		err = fmt.Errorf("readiness: epoll_ctl: %w", ctlErr)
	}
	if err != nil {
		return err
	}
	w.added, w.armed = true, true
	return nil
}

// Fire runs ready now if the watch is armed, as if the socket had become
// ready. It is for a socket just closed: the kernel drops a closed socket
// from an epoll set without a word, so whoever closes one that may be
// armed fires its watch, for ready to find it closed.
func (w *Watch) Fire() { w.fire() }

// fire runs ready if the watch is armed, and disarms it.
func (w *Watch) fire() {
	w.mu.Lock()
	armed := w.armed
	w.armed = false
	w.mu.Unlock()
	if armed {
		w.ready()
	}
}

// Remove takes the socket out of the set; ready does not run afterwards,
// unless it is running already. Call it before the socket is closed, or
// after: a closed socket has left the set by itself. It is idempotent.
func (w *Watch) Remove() {
	w.mu.Lock()
	added := w.added && !w.removed
	w.removed, w.armed = true, false
	w.mu.Unlock()
	if added {
		_ = w.rc.Control(func(fd uintptr) {
			_ = syscall.EpollCtl(w.set.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	w.set.mu.Lock()
	delete(w.set.watches, w.token)
	w.set.mu.Unlock()
}

// interest is what a watch waits for: data, the peer's shutdown, and (always
// reported) errors and hang-ups, once.
const interest = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// eventFor is the epoll event of a watch, its token in the event's data.
func eventFor(token uint64) syscall.EpollEvent {
	return syscall.EpollEvent{Events: uint32(interest), Fd: int32(uint32(token)), Pad: int32(uint32(token >> 32))}
}

// tokenOf is the token eventFor put in an event.
func tokenOf(ev syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
