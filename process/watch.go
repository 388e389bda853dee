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

// newWatcher watches the child of pidfd, which it takes over, and stdout and
// stderr: for data when they are to be read, else for their hang-up alone.
func newWatcher(pidfd, stdout, stderr int, readStdout, readStderr bool) (*watcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		syscall.Close(pidfd)
		return nil, err
	}
	w := &watcher{pidfd: pidfd, stdout: stdout, stderr: stderr}
	err = errors.Join(
		w.add(epfd, pidfd, syscall.EPOLLIN|syscall.EPOLLONESHOT, exitReady), // reported once: no removal needed
		w.add(epfd, w.stdout, readEvents(readStdout), stdoutReady),
		w.add(epfd, w.stderr, readEvents(readStderr), stderrReady),
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

// readEvents are the events watched on an output: data too when it is to be
// read; hang-up and errors are always reported.
func readEvents(read bool) uint32 {
	if read {
		return syscall.EPOLLIN
	}
	return 0
}

func (w *watcher) add(epfd, fd int, events uint32, tag int32) error {
	return syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: events, Fd: tag})
}

// stop stops watching fd.
func (w *watcher) stop(fd int) {
	_ = w.raw.Control(func(epfd uintptr) {
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

// next waits until something is reported or the deadline (zero: none)
// passes, and returns what was reported, or 0 at the deadline.
func (w *watcher) next(deadline time.Time) int {
	_ = w.ep.SetReadDeadline(deadline)
	ready := 0
	_ = w.raw.Read(func(epfd uintptr) bool {
		ready = w.collect(epfd)
		return ready != 0
	})
	return ready
}

func (w *watcher) close() {
	if w.ep != nil {
		w.ep.Close()
	}
	syscall.Close(w.pidfd)
}
