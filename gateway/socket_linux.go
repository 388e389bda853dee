package gateway

import (
	"net"
	"syscall"
	"unsafe"
)

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
