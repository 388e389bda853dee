package wsconn

import (
	"net"

	"golang.org/x/sys/unix"
)

// LimitUnsent does nothing: FreeBSD has no TCP_NOTSENT_LOWAT, so a close
// frame or ping that jumps ahead of a session's batch may wait behind the
// whole kernel send queue, and a slow client's 1001 at shutdown may come
// later than on Linux.
func LimitUnsent(net.Conn) {}

// fionwrite is FIONWRITE from <sys/filio.h>, _IOR('f', 119, int): the bytes
// in a socket's send queue, those sent and not yet acknowledged included.
const fionwrite = 0x40046677

// unsentBytes returns how many bytes written to conn its peer has not
// acknowledged, and false when that cannot be told.
func unsentBytes(conn net.Conn) (int, bool) {
	rc := RawConnOf(conn)
	if rc == nil {
		return 0, false
	}
	var n int
	var err error
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), fionwrite) }); cerr != nil || err != nil {
		return 0, false
	}
	return n, true
}
