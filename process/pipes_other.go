//go:build unix && !linux

package process

import (
	"errors"
	"os"
	"syscall"
)

// setNonblock makes a new descriptor non-blocking.
func setNonblock(fd int) error {
	return os.NewSyscallError("fcntl", syscall.SetNonblock(fd, true))
}

// pipe returns a close-on-exec pipe's read and write ends. Without pipe2,
// the fork lock keeps a fork from inheriting them before they are marked.
func pipe() (r, w int, err error) {
	var fds [2]int
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(fds[:]); err != nil {
		return -1, -1, os.NewSyscallError("pipe", err)
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds[0], fds[1], nil
}

// TerminalStdoutOffered reports whether Spec.TerminalStdout can be had:
// only on Linux.
const TerminalStdoutOffered = false

// openTerminal fails: a pseudo-terminal stdout is Linux's only.
func openTerminal() (master, slave int, err error) {
	return -1, -1, errors.New("a pseudo-terminal stdout is Linux-only")
}
