package process

import (
	"errors"
	"os"
	"syscall"
)

// pipeSet holds the three pipes of a child while it is being started; with
// Spec.TerminalStdout, stdout is a pseudo-terminal instead of a pipe. The
// child's ends stay blocking, as programs expect of their stdio. Of the
// parent's, stdin is an *os.File in the runtime's poller, for its write
// deadlines; stdout and stderr are bare non-blocking descriptors, read by
// Feed when its epoll set says so, which costs no poller registration.
type pipeSet struct {
	stdin                                *os.File
	childStdin, childStdout, childStderr int // -1 when not open
	stdout, stderr                       int
}

// open creates the three pipes, stdout a pseudo-terminal when terminal is
// set. On error the ones made so far stay set, for the caller's closes.
func (s *pipeSet) open(terminal bool) error {
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
	if terminal {
		s.stdout, s.childStdout, err = openTerminal()
	} else {
		s.stdout, s.childStdout, err = pipe()
	}
	if err != nil {
		return err
	}
	if s.stderr, s.childStderr, err = pipe(); err != nil {
		return err
	}
	return errors.Join(setNonblock(s.stdout), setNonblock(s.stderr))
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
