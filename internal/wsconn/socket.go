package wsconn

import (
	"net"
	"syscall"

	"github.com/wsgate/wsgate/internal/pollnow"
)

// PeerHungUp reports whether the peer of conn has closed or reset the
// connection, even while unread data is queued before its FIN.
func PeerHungUp(conn net.Conn) bool {
	raw := RawConnOf(conn)
	if raw == nil {
		return false
	}
	hungUp := false
	_ = raw.Control(func(fd uintptr) {
		revents, err := pollnow.Events(fd, pollnow.RdHup)
		hungUp = err == nil && revents&(pollnow.RdHup|pollnow.Hup|pollnow.Err) != 0
	})
	return hungUp
}

// notSentLimit bounds what a client's TCP socket holds that is not yet
// sent. Without it, Linux lets the send queue of a client that reads slower
// than its child prints grow to megabytes (3.2 MB each, measured with 100
// clients reading yes at full speed on loopback), and a close frame or ping
// that jumps ahead of the session's own batch still waits behind all of it:
// shutdown's 1001 then cannot reach a client within its bound. With it, what
// is ahead of a control frame is what the client's window holds in flight,
// plus this much; writes block sooner, which only moves the backpressure
// from the kernel to the child's pipe.
const notSentLimit = 128 << 10

// socketWriter writes to a socket without waiting for it: what the socket
// does not take at once is left to the caller. Its function is bound once,
// so that a write allocates nothing; one goroutine at a time uses it.
type socketWriter struct {
	rc  syscall.RawConn
	do  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

// newSocketWriter returns a writer to conn's socket, or nil when conn has
// none.
func newSocketWriter(conn net.Conn) *socketWriter {
	rc := RawConnOf(conn)
	if rc == nil {
		return nil
	}
	sw := &socketWriter{rc: rc}
	sw.do = sw.writeFD
	return sw
}

// write writes what of p the socket takes at once. The raw connection holds
// the descriptor open meanwhile, so a close from another goroutine cannot
// hand its number to another socket under the write.
func (sw *socketWriter) write(p []byte) (int, error) {
	sw.p = p
	err := sw.rc.Write(sw.do)
	n, werr := sw.n, sw.err
	sw.p, sw.n, sw.err = nil, 0, nil
	if err != nil {
		return 0, err
	}
	return n, werr
}

func (sw *socketWriter) writeFD(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), sw.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			sw.n, sw.err = 0, nil
		default:
			sw.n, sw.err = max(n, 0), err
		}
		return true
	}
}

// RawConnOf returns the raw connection of conn's socket, or nil when conn
// has none of its own (TLS, say).
func RawConnOf(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
