package gateway

import (
	"bufio"
	"crypto/tls"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/wsconn"
	"net"
	"net/http"
	"sync"
)

// wsconn.BatchLimit is the most a batch of frames holds before it is written anyway.

// clientReadBufferSize is the buffer a broadcast member's client is read
// into, and a client under TLS.
const clientReadBufferSize = 2 << 10

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

// hijackWriter hands gorilla a clientConn when it hijacks the connection,
// and keeps the socket under it.
type hijackWriter struct {
	http.ResponseWriter
	conn *clientConn
	raw  net.Conn // the TCP or Unix connection, under any TLS
}

// Hijack implements http.Hijacker. gorilla refuses a client that sent
// anything before the handshake response, so brw holds nothing the
// session must read: the session reads conn itself.
func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
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

// smallBufferSize is the buffer a broadcast member gathers its messages to
// the shared stdin in. A member holds it while it waits its turn, and every
// member may be waiting at once (a thousand clients answering the same
// line), so it is small; a bigger message grows it.
const smallBufferSize = 1 << 10

// bufferPool, smallBufferPool and readBufferPool hold the buffers that
// sessions use only while data moves, so that an idle session holds none.
var (
	bufferPool      = sync.Pool{New: func() any { return newBuffer(wsconn.BatchLimit) }}
	smallBufferPool = sync.Pool{New: func() any { return newBuffer(smallBufferSize) }}
	readBufferPool  = sync.Pool{New: func() any { return newBuffer(clientReadBufferSize) }}
)

func newBuffer(size int) *[]byte {
	b := make([]byte, 0, size)
	return &b
}

// getBuffer returns an empty buffer of wsconn.BatchLimit bytes.
func getBuffer() *[]byte { return take(&bufferPool) }

// getSmallBuffer returns an empty buffer of smallBufferSize bytes.
func getSmallBuffer() *[]byte { return take(&smallBufferPool) }

// getReadBuffer returns an empty buffer of clientReadBufferSize bytes.
func getReadBuffer() *[]byte { return take(&readBufferPool) }

func take(pool *sync.Pool) *[]byte {
	b := pool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// putBuffer gives a buffer back to its pool; one that has grown is let go.
func putBuffer(b *[]byte) {
	switch cap(*b) {
	case wsconn.BatchLimit:
		bufferPool.Put(b)
	case smallBufferSize:
		smallBufferPool.Put(b)
	case clientReadBufferSize:
		readBufferPool.Put(b)
	}
}
