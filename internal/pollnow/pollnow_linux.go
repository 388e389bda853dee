// Package pollnow asks the kernel, without waiting, which poll(2) events a
// file descriptor has. It is what the runtime's poller cannot tell: whether
// a peer hung up while unread data is queued, or whether a read would
// return at once.
// On Linux it is ppoll(2) with a zero timeout; elsewhere poll(2).
package pollnow

import (
	"syscall"
	"unsafe"
)

// poll(2) events from <poll.h>, which package syscall lacks.
const (
	In    = 0x1    // data to read
	Err   = 0x8    // an error on the descriptor, such as a reset
	Hup   = 0x10   // hung up: both directions shut down, or no writers left
	RdHup = 0x2000 // the peer shut down its side of a stream socket
)

// Events returns which of events, and of Err and Hup (always reported), fd
// has right now.
func Events(fd uintptr, events int16) (int16, error) {
	fds := [1]struct {
		fd      int32
		events  int16
		revents int16
	}{{fd: int32(fd), events: events}}
	var zero syscall.Timespec
	n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	if n == 0 {
		return 0, nil
	}
	return fds[0].revents, nil
}
