//go:build linux && !wsgate_portable

package process

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// What a watcher reports.
const (
	exitReady   = 1 << iota // the leader has exited
	stdoutReady             // stdout has data or has ended (or, unread, hung up)
	stderrReady             // stderr likewise
)

// watcher waits, in one goroutine and without an OS thread, for whichever
// comes first: the leader's exit (its pidfd), or data or the end of stdout
// or stderr. It is an epoll set of those three, itself parked in the
// runtime's poller.
type watcher struct {
	ep                    *os.File
	raw                   syscall.RawConn
	pidfd, stdout, stderr int
	events                [4]syscall.EpollEvent
}

// newWatcher watches the child of pidfd, which it takes over, and its stdout
// and stderr.
func newWatcher(pidfd, stdout, stderr int) (*watcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		syscall.Close(pidfd)
		return nil, err
	}
	w := &watcher{pidfd: pidfd, stdout: stdout, stderr: stderr}
	err = errors.Join(
		w.add(epfd, pidfd, syscall.EPOLLIN|syscall.EPOLLONESHOT, exitReady), // reported once: no removal needed
		w.add(epfd, w.stdout, syscall.EPOLLIN, stdoutReady),
		w.add(epfd, w.stderr, syscall.EPOLLIN, stderrReady),
		setNonblock(epfd),
	)
	w.ep = os.NewFile(uintptr(epfd), "epoll")
	if err == nil {
		w.raw, err = w.ep.SyscallConn()
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *watcher) add(epfd, fd int, events uint32, tag int32) error {
	return syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: events, Fd: tag})
}

// watchOutput starts or stops watching an output that newWatcher watches,
// tagged with what it reports.
func (w *watcher) watchOutput(fd, tag int, on bool) {
	_ = w.raw.Control(func(epfd uintptr) {
		if on {
			_ = w.add(int(epfd), fd, syscall.EPOLLIN, int32(tag))
			return
		}
		_ = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_DEL, fd, nil)
	})
}

// poll returns what is reported now, without waiting.
func (w *watcher) poll() int {
	ready := 0
	_ = w.raw.Control(func(epfd uintptr) { ready = w.collect(epfd) })
	return ready
}

// collect returns what epfd reports now.
func (w *watcher) collect(epfd uintptr) int {
	ready := 0
	n, err := syscall.EpollWait(int(epfd), w.events[:], 0)
	for i := 0; i < n && err == nil; i++ {
		ready |= int(w.events[i].Fd)
	}
	return ready
}

// next waits until something is reported, or until kick, and returns what
// was reported, or 0 for a kick.
func (w *watcher) next() int {
	ready := 0
	_ = w.raw.Read(func(epfd uintptr) bool {
		ready = w.collect(epfd)
		return ready != 0
	})
	return ready
}

// kick makes the current or next call of next return 0 at once, until
// rearm. It may be called from any goroutine, also after close.
func (w *watcher) kick() {
	_ = w.ep.SetReadDeadline(time.Unix(1, 0))
}

// rearm undoes a kick. Call it before looking at what the kick was for.
func (w *watcher) rearm() {
	_ = w.ep.SetReadDeadline(time.Time{})
}

// reapLeader collects the leader, once reported exited, and returns how it
// ended.
func (w *watcher) reapLeader(pid int) syscall.WaitStatus { return reap(pid) }

// closeOutput closes the parent's read end of an output, which also takes
// it out of the epoll set.
func (w *watcher) closeOutput(fd int) { syscall.Close(fd) }

func (w *watcher) close() {
	if w.ep != nil {
		w.ep.Close()
	}
	syscall.Close(w.pidfd)
}
