package wsconn

import (
	"net"

	"golang.org/x/sys/unix"
)

// LimitUnsent applies notSentLimit to a TCP connection (macOS has
// TCP_NOTSENT_LOWAT too); other kinds are left as they are.
func LimitUnsent(conn net.Conn) {
	if _, ok := conn.(*net.TCPConn); !ok {
		return
	}
	if rc := RawConnOf(conn); rc != nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLimit)
		})
	}
}

// unsentBytes returns how many bytes written to conn are still in its
// send buffer, not yet acknowledged by the peer (SO_NWRITE), and false when
// that cannot be told.
func unsentBytes(conn net.Conn) (int, bool) {
	rc := RawConnOf(conn)
	if rc == nil {
		return 0, false
	}
	var n int
	var err error
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NWRITE) }); cerr != nil || err != nil {
		return 0, false
	}
	return n, true
}
