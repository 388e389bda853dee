package gateway

import (
	"net"
	"syscall"
	"unsafe"
)

// poll(2) events from <poll.h>, which package syscall lacks.
const (
	pollERR   = 0x8    // an error on the socket, such as a reset
	pollHUP   = 0x10   // both directions shut down
	pollRDHUP = 0x2000 // the peer shut down its side
)

// peerHungUp reports whether the peer of conn has closed or reset the
// connection, even while unread data is queued before its FIN.
func peerHungUp(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	hungUp := false
	_ = raw.Control(func(fd uintptr) {
		fds := [1]struct {
			fd      int32
			events  int16
			revents int16
		}{{fd: int32(fd), events: pollRDHUP}}
		var zero syscall.Timespec
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
		hungUp = errno == 0 && n == 1 && fds[0].revents&(pollRDHUP|pollHUP|pollERR) != 0
	})
	return hungUp
}
