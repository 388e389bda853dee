package wsconn

import (
	"net"
	"syscall"
	"unsafe"
)

// tcpNotSentLowat is TCP_NOTSENT_LOWAT from <linux/tcp.h>, the same on every
// architecture; package syscall has it for some only.
const tcpNotSentLowat = 25

// LimitUnsent applies notSentLimit to a TCP connection; other kinds are left
// as they are.
func LimitUnsent(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, notSentLimit)
	})
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
