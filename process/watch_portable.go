//go:build unix && (!linux || wsgate_portable)

package process

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/wsgate/wsgate/internal/pollnow"
)

// What a watcher reports.
const (
	exitReady   = 1 << iota // the leader has exited
	stdoutReady             // stdout has data or has ended (or, unread, hung up)
	stderrReady             // stderr likewise
)

// watcher tells Feed, which waits in next, whichever comes first: the
// leader's exit (exits tells it), or data or the end of stdout or stderr.
// Without an epoll set, each output Feed waits for has a goroutine waiting
// in the runtime's poller (waitFor), started by next and ended by the
// output's readiness or its close; the watcher owns them, and close waits
// for them.
type watcher struct {
	outputs [2]*output    // stdout, stderr
	wake    chan struct{} // something to look at: a report or a kick
	kicked  atomic.Bool

	mu     sync.Mutex
	ready  int // reported, not yet taken by next or poll
	status syscall.WaitStatus
	exited chan struct{} // closed once the leader is reaped, status set

	waiters sync.WaitGroup
}

// output is one of the child's outputs, in the runtime's poller.
type output struct {
	file    *os.File
	rc      syscall.RawConn
	fd      int
	tag     int
	on      bool // reported (watchOutput)
	waiting bool // its goroutine waits in the poller
	closed  bool
}

// newWatcher watches stdout and stderr, which it takes over: closeOutput
// and close close them.
func newWatcher(stdout, stderr int) *watcher {
	w := &watcher{wake: make(chan struct{}, 1), exited: make(chan struct{})}
	for i, fd := range [2]int{stdout, stderr} {
		o := &output{file: os.NewFile(uintptr(fd), "|output"), fd: fd, tag: stdoutReady << i, on: true}
		o.rc, _ = o.file.SyscallConn() // fails only for a nil file
		w.outputs[i] = o
	}
	return w
}

// leaderExited is what exits tells.
func (w *watcher) leaderExited(ws syscall.WaitStatus) {
	w.mu.Lock()
	w.status = ws
	w.ready |= exitReady
	w.mu.Unlock()
	close(w.exited)
	w.signal()
}

// reapLeader returns how the leader ended, once it has.
func (w *watcher) reapLeader(int) syscall.WaitStatus {
	<-w.exited
	return w.status
}

// signal wakes next, if it waits.
func (w *watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// watchOutput starts or stops reporting an output, tagged with what it
// reports.
func (w *watcher) watchOutput(_, tag int, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.outputs {
		if o.tag == tag {
			o.on = on
		}
	}
	if !on {
		w.ready &^= tag
	}
}

// reported is what may be reported now: the exit and the outputs watched.
func (w *watcher) reported() int {
	mask := exitReady
	for _, o := range w.outputs {
		if o.on && !o.closed {
			mask |= o.tag
		}
	}
	return mask
}

// poll returns what is reported now, without waiting.
func (w *watcher) poll() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	ready := w.ready & exitReady
	w.ready &^= exitReady
	for _, o := range w.outputs {
		if o.on && !o.closed && readableNow(uintptr(o.fd)) {
			ready |= o.tag
		}
	}
	return ready
}

// next waits until something is reported, or until kick, and returns what
// was reported, or 0 for a kick.
func (w *watcher) next() int {
	for {
		if w.kicked.Load() {
			return 0
		}
		w.mu.Lock()
		ready := w.ready & w.reported()
		w.ready &^= ready
		if ready == 0 {
			w.waitForOutputs()
		}
		w.mu.Unlock()
		if ready != 0 {
			return ready
		}
		<-w.wake
	}
}

// waitForOutputs starts a waiter for each output reported and not waited
// for already. w.mu is held.
func (w *watcher) waitForOutputs() {
	for _, o := range w.outputs {
		if o.on && !o.closed && !o.waiting {
			o.waiting = true
			w.waiters.Add(1)
			go w.waitFor(o)
		}
	}
}

// waitFor waits in the runtime's poller until o is readable, has ended or
// failed, and reports it; or until o is closed.
func (w *watcher) waitFor(o *output) {
	defer w.waiters.Done()
	err := o.rc.Read(readableNow)
	w.mu.Lock()
	o.waiting = false
	if err == nil {
		w.ready |= o.tag
	}
	w.mu.Unlock()
	w.signal()
}

// readableNow reports whether a read of fd would not wait: it has data, has
// ended or has failed. When it has not, the runtime's poller waits.
func readableNow(fd uintptr) bool {
	revents, err := pollnow.Events(fd, pollnow.In)
	return err != nil || revents != 0
}

// kick makes the current or next call of next return 0 at once, until
// rearm. It may be called from any goroutine, also after close.
func (w *watcher) kick() {
	w.kicked.Store(true)
	w.signal()
}

// rearm undoes a kick. Call it before looking at what the kick was for.
func (w *watcher) rearm() { w.kicked.Store(false) }

// closeOutput closes the parent's read end of an output; its waiter ends.
func (w *watcher) closeOutput(fd int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.outputs {
		if o.fd == fd && !o.closed {
			o.closed = true
			w.ready &^= o.tag
			o.file.Close()
		}
	}
}

// close closes the outputs still open and waits for their waiters.
func (w *watcher) close() {
	for _, o := range w.outputs {
		w.closeOutput(o.fd)
	}
	w.waiters.Wait()
}
