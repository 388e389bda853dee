package process

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// pipeSet holds the three pipes of a child while it is being started. The
// child's ends stay blocking, as programs expect of their stdio. Of the
// parent's, stdin is an *os.File in the runtime's poller, for its write
// deadlines; stdout and stderr are bare non-blocking descriptors, read by the
// supervisor when its epoll set says so, which costs no poller registration.
type pipeSet struct {
	stdin                                *os.File
	childStdin, childStdout, childStderr int // -1 when not open
	stdout, stderr                       int
}

// open creates the three pipes. On error the ones made so far stay set, for
// the caller's closes.
func (s *pipeSet) open() error {
	s.childStdin, s.childStdout, s.childStderr, s.stdout, s.stderr = -1, -1, -1, -1, -1
	var w int
	var err error
	if s.childStdin, w, err = pipe(); err != nil {
		return err
	}
	if err := setNonblock(w); err != nil {
		syscall.Close(w)
		return err
	}
	s.stdin = os.NewFile(uintptr(w), "|1") // non-blocking: in the poller
	if s.stdout, s.childStdout, err = pipe(); err != nil {
		return err
	}
	if s.stderr, s.childStderr, err = pipe(); err != nil {
		return err
	}
	return errors.Join(setNonblock(s.stdout), setNonblock(s.stderr))
}

// setNonblock makes a new descriptor non-blocking. A fresh one has no
// other status flag, so one F_SETFL does, where syscall.SetNonblock reads the
// flags first.
func setNonblock(fd int) error {
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFL, syscall.O_NONBLOCK)
	if errno != 0 {
		return os.NewSyscallError("fcntl", errno)
	}
	return nil
}

// pipe returns a close-on-exec pipe's read and write ends.
func pipe() (r, w int, err error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return -1, -1, os.NewSyscallError("pipe2", err)
	}
	return fds[0], fds[1], nil
}

// closeChildEnds closes the ends the child inherited: once it has them, the
// parent must not, or it would never see EOF.
func (s *pipeSet) closeChildEnds() {
	closeFd(s.childStdin)
	closeFd(s.childStdout)
	closeFd(s.childStderr)
}

// closeParentEnds closes the parent's ends, when the child could not start.
func (s *pipeSet) closeParentEnds() {
	if s.stdin != nil {
		s.stdin.Close()
	}
	closeFd(s.stdout)
	closeFd(s.stderr)
}

func closeFd(fd int) {
	if fd >= 0 {
		syscall.Close(fd)
	}
}

// Output is the parent's read end of a child's stdout or stderr. Once the
// child's group has been swept, a read that waits on an empty pipe reports
// EOF, so that a process that escaped the group cannot hold the reader
// forever. An Output is for one reading goroutine.
type Output struct {
	file  *os.File
	swept *atomic.Bool
}

// newOutput wraps a parent's read end for a caller that reads it itself.
func newOutput(fd int, name string, swept *atomic.Bool) *Output {
	return &Output{file: os.NewFile(uintptr(fd), name), swept: swept}
}

// Read reads what the pipe holds, waiting for output if it holds nothing.
func (o *Output) Read(b []byte) (int, error) {
	if o.swept.Load() {
		o.wake()
	}
	n, err := o.file.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
		err = io.EOF
	}
	return n, err
}

// Ready reports whether a Read would return at once: output, or its end, is
// waiting.
func (o *Output) Ready() bool {
	raw, err := o.file.SyscallConn()
	if err != nil {
		return true
	}
	ready := true
	_ = raw.Control(func(fd uintptr) { ready = readable(fd) })
	return ready
}

// WaitReady waits until a Read would return at once. Waiting this way, rather
// than in Read, lets an idle reader hold no buffer.
func (o *Output) WaitReady() {
	if o.swept.Load() {
		o.wake()
	}
	raw, err := o.file.SyscallConn()
	if err != nil {
		return
	}
	// An error (deadline, closed file) means Read will not wait either.
	_ = raw.Read(func(fd uintptr) bool { return readable(fd) })
}

// wake bounds how long the current or next read waits for data.
func (o *Output) wake() {
	_ = o.file.SetReadDeadline(time.Now().Add(orphanReadWait))
}
