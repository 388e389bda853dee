package gateway

import (
	"net"
	"syscall"
	"unsafe"

	"github.com/wsgate/wsgate/internal/pollnow"
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
		revents, err := pollnow.Events(fd, pollnow.RdHup)
		hungUp = err == nil && revents&(pollnow.RdHup|pollnow.Hup|pollnow.Err) != 0
	})
	return hungUp
}

// siocOutq is SIOCOUTQ (TIOCOUTQ) from <linux/sockios.h>: for a TCP socket,
// the bytes written that the peer has not yet acknowledged; for a Unix
// socket, the bytes not yet read.
const siocOutq = 0x5411

// unsentBytes returns how many bytes written to conn its peer has not
// acknowledged, and false when that cannot be told.
func unsentBytes(conn net.Conn) (int, bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int32
	var errno syscall.Errno
	err = raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, siocOutq, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil || errno != 0 {
		return 0, false
	}
	return int(n), true
}
