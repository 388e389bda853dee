package process

import (
	"os"
	"syscall"
)

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
