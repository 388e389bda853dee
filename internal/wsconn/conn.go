package wsconn

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/wsgate/wsgate/internal/frames"
)

// ReadBufferSize is the buffer a broadcast member's client is read
// into, and a client under TLS.
const ReadBufferSize = 2 << 10

// clientConn is the connection gorilla writes its handshake response to,
// which it notes accepts permessage-deflate or not. gorilla does nothing
// more with it: the session reads it (clientread.go) and its wire writes
// it.
type clientConn struct {
	net.Conn
	// deflate records that the handshake response accepted
	// permessage-deflate. It is set by the handler's goroutine, which then
	// builds the session.
	deflate bool
}

// Write passes the handshake response through.
func (c *clientConn) Write(p []byte) (int, error) {
	c.deflate = c.deflate || frames.AcceptsDeflate(p)
	return c.Conn.Write(p)
}

// HijackWriter hands the upgrader (gorilla) a connection of its own when it
// hijacks one: it notes whether the handshake response it writes accepts
// permessage-deflate, and keeps the socket under any TLS.
type HijackWriter struct {
	http.ResponseWriter
	conn *clientConn
	raw  net.Conn // the TCP or Unix connection, under any TLS
}

// Conn returns the hijacked connection, TLS included; nil before Hijack.
func (h *HijackWriter) Conn() net.Conn { return h.conn.Conn }

// Raw returns the socket under any TLS.
func (h *HijackWriter) Raw() net.Conn { return h.raw }

// Deflate reports whether the handshake response accepted
// permessage-deflate.
func (h *HijackWriter) Deflate() bool { return h.conn.deflate }

// Hijack implements http.Hijacker. gorilla refuses a client that sent
// anything before the handshake response, so brw holds nothing the
// session must read: the session reads conn itself.
func (h *HijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := h.ResponseWriter.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.raw = conn
	if tlsConn, ok := conn.(*tls.Conn); ok {
		h.raw = tlsConn.NetConn()
	}
	h.conn = &clientConn{Conn: conn}
	return h.conn, brw, nil
}

// SmallBufferSize is the buffer a broadcast member gathers its messages to
// the shared stdin in. A member holds it while it waits its turn, and every
// member may be waiting at once (a thousand clients answering the same
// line), so it is small; a bigger message grows it.
const SmallBufferSize = 1 << 10

// bufferPool, smallBufferPool and readBufferPool hold the buffers that
// sessions use only while data moves, so that an idle session holds none.
var (
	bufferPool      = sync.Pool{New: func() any { return newBuffer(BatchLimit) }}
	smallBufferPool = sync.Pool{New: func() any { return newBuffer(SmallBufferSize) }}
	readBufferPool  = sync.Pool{New: func() any { return newBuffer(ReadBufferSize) }}
)

func newBuffer(size int) *[]byte {
	b := make([]byte, 0, size)
	return &b
}

// GetBuffer returns an empty buffer of BatchLimit bytes.
func GetBuffer() *[]byte { return take(&bufferPool) }

// GetSmallBuffer returns an empty buffer of SmallBufferSize bytes.
func GetSmallBuffer() *[]byte { return take(&smallBufferPool) }

// GetReadBuffer returns an empty buffer of ReadBufferSize bytes.
func GetReadBuffer() *[]byte { return take(&readBufferPool) }

func take(pool *sync.Pool) *[]byte {
	b := pool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// PutBuffer gives a buffer back to its pool; one that has grown is let go.
func PutBuffer(b *[]byte) {
	switch cap(*b) {
	case BatchLimit:
		bufferPool.Put(b)
	case SmallBufferSize:
		smallBufferPool.Put(b)
	case ReadBufferSize:
		readBufferPool.Put(b)
	}
}

// SocketReader reads a socket's data as far as it is there, so that a
// reader holds a buffer only while it reads.
type SocketReader struct {
	rc syscall.RawConn
	// Pooled returns the buffer a read turn reads into; GetReadBuffer
	// unless set.
	Pooled func() *[]byte
}

// RawConn returns the socket's raw connection, for a readiness set to
// watch.
func (r *SocketReader) RawConn() syscall.RawConn { return r.rc }

// NewSocketReader returns a reader of conn's socket, or nil when conn has
// none (TLS, say).
func NewSocketReader(conn net.Conn) *SocketReader {
	rc := RawConnOf(conn)
	if rc == nil {
		return nil
	}
	return &SocketReader{rc: rc, Pooled: GetReadBuffer}
}

// MaxReadTurn is the most a read takes from its socket before what it
// decoded goes to the stdin: the reader comes straight back for the rest.
const MaxReadTurn = BatchLimit

// Read reads what the socket holds, up to MaxReadTurn bytes, and passes it
// to use, a pooled buffer at a time; use may change what it is given but
// not keep it. A member's buffer is small (ReadBufferSize) because
// every member may be reading at once: a thousand subscribers answering
// the same line start a thousand reads, and with 64 KiB each they once
// took 17 MB of heap together (gctrace), most of the idle gateway's RSS.
// It returns use's error, io.EOF at the end of the stream, or the read's;
// nil when the socket has nothing more for now, or the turn is used up.
// It never waits: the readiness set does, for a member.
func (r *SocketReader) Read(use func(p []byte) error) error { return r.turn(use, false) }

// ReadWhenReady is Read for a reader that has nothing else to do: while
// the socket has nothing to read, it waits in the runtime's poller, holding
// no buffer, until it has (data, its end or an error) or its read deadline
// passes.
func (r *SocketReader) ReadWhenReady(use func(p []byte) error) error { return r.turn(use, true) }

// turn is Read, waiting first if wait is set.
func (r *SocketReader) turn(use func(p []byte) error, wait bool) error {
	var buf *[]byte
	defer func() {
		if buf != nil {
			PutBuffer(buf)
		}
	}()
	for taken := 0; taken < MaxReadTurn; {
		var (
			n    int
			rerr error
		)
		err := r.rc.Read(func(fd uintptr) bool {
			if buf == nil {
				buf = r.Pooled()
			}
			for {
				n, rerr = syscall.Read(int(fd), (*buf)[:cap(*buf)])
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN && wait && taken == 0 {
				PutBuffer(buf) // none is held while the poller waits
				buf = nil
				return false
			}
			return true
		})
		switch {
		case err != nil:
			return err
		case rerr == syscall.EAGAIN:
			return nil
		case rerr != nil:
			return rerr
		case n == 0:
			if taken > 0 {
				return nil // the end is told by the next read, after what came before it is delivered
			}
			return io.EOF
		}
		if err := use((*buf)[:n]); err != nil {
			return err
		}
		if n < cap(*buf) {
			return nil // all there was: a read more would only say EAGAIN
		}
		taken += n
	}
	return nil
}
