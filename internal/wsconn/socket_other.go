//go:build unix && !linux

package wsconn

import "net"

// LimitUnsent does nothing here: the bound on a socket's unsent bytes
// (TCP_NOTSENT_LOWAT, socket_linux.go) is Linux's. Elsewhere a close frame
// or ping that jumps ahead of a session's batch may wait behind a larger
// kernel send queue, so a slow client's 1001 at shutdown may come later.
func LimitUnsent(net.Conn) {}

// unsentBytes cannot tell (SIOCOUTQ is Linux's): what a client has
// acknowledged is then unknown, and logged so.
func unsentBytes(net.Conn) (int, bool) { return 0, false }
