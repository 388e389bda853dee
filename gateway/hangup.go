package gateway

import (
	"net"
	"syscall"

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
