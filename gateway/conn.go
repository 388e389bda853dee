package gateway

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// batchLimit is the most a batch of frames holds before it is written anyway.
const batchLimit = 64 << 10

// clientReadBufferSize is the buffer client frames are read through.
const clientReadBufferSize = 2 << 10

// clientConn is the connection gorilla reads from and writes its handshake
// response to. Once a session has attached its wire, what gorilla still
// writes (the close frames it answers protocol errors with) goes to the wire
// as a control frame, so that the wire stays the socket's only writer, and
// gorilla's write deadlines are ignored: the wire sets its own. What is read
// passes through a frameTracker.
type clientConn struct {
	net.Conn
	wire atomic.Pointer[wire]
	// deflate records that the handshake response accepted
	// permessage-deflate. It is set by the handler's goroutine, which then
	// builds the session.
	deflate bool
	// closing, set before wire, is told of each close frame gorilla writes
	// and returns the frame to send instead.
	closing func(frame []byte) []byte
	frames  frameTracker // the reader's own
}

// Read reads from the connection and follows the client's frames.
func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.frames.scan(p[:max(n, 0)])
	return n, err
}

// Write passes the handshake response through, and later control frames
// to the wire.
func (c *clientConn) Write(p []byte) (int, error) {
	if w := c.wire.Load(); w != nil {
		frame := append([]byte(nil), p...)
		if frameOpcode(frame) == opClose && c.closing != nil {
			frame = c.closing(frame)
		}
		w.control(frame)
		return len(p), nil
	}
	c.deflate = c.deflate || acceptsDeflate(p)
	return c.Conn.Write(p)
}

// SetWriteDeadline applies to the handshake response only.
func (c *clientConn) SetWriteDeadline(t time.Time) error {
	if c.wire.Load() != nil {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// hijackWriter hands gorilla a clientConn when it hijacks the connection,
// and keeps the buffered reader gorilla reads from, so the session can tell
// whether more client messages are already waiting.
type hijackWriter struct {
	http.ResponseWriter
	conn   *clientConn
	raw    net.Conn // the TCP or Unix connection, under any TLS
	reader *bufio.Reader
	// member says the connection is a broadcast member's, whose socket the
	// session reads itself unless it is under TLS (memberread.go).
	member bool
}

// Hijack implements http.Hijacker.
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
	readsItself := h.member && h.raw == conn
	if brw.Reader.Buffered() == 0 && !readsItself {
		// A smaller reader than net/http's 4 KiB: it is held for the whole
		// life of an idle session. gorilla reads big payloads past it. A
		// member that reads its socket itself lets go of gorilla's reader
		// after the handshake: it keeps net/http's meanwhile.
		brw.Reader = bufio.NewReaderSize(h.conn, clientReadBufferSize)
	}
	h.reader = brw.Reader
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
	bufferPool      = sync.Pool{New: func() any { return newBuffer(batchLimit) }}
	smallBufferPool = sync.Pool{New: func() any { return newBuffer(smallBufferSize) }}
	readBufferPool  = sync.Pool{New: func() any { return newBuffer(clientReadBufferSize) }}
)

func newBuffer(size int) *[]byte {
	b := make([]byte, 0, size)
	return &b
}

// getBuffer returns an empty buffer of batchLimit bytes.
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
	case batchLimit:
		bufferPool.Put(b)
	case smallBufferSize:
		smallBufferPool.Put(b)
	case clientReadBufferSize:
		readBufferPool.Put(b)
	}
}

// frameBufferCap is the capacity of a frame batch's buffer: the batch is
// written once it holds batchLimit bytes, and the frame that gets it there
// carries less than batchLimit of payload (a longer line is sent in pieces),
// so the buffer never grows. A buffer that grew would not go back to the
// pool, and a new one would be allocated for every batch: measured, with 20
// clients reading yes, 2.3 GB allocated in 2 s and a GC every 3 ms, which
// with a hundred clients starved the shutdown of CPU.
const frameBufferCap = 2*batchLimit + maxFrameHeader

// frameBufferPool holds the frame batches' buffers, used only while data
// moves.
var frameBufferPool = sync.Pool{New: func() any {
	b := make([]byte, 0, frameBufferCap)
	return &b
}}

func getFrameBuffer() *[]byte {
	b := frameBufferPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// putFrameBuffer gives a batch's buffer back, unless a frame over the usual
// size (a JSON line under --passstderr) made it grow.
func putFrameBuffer(b *[]byte) {
	if cap(*b) == frameBufferCap {
		frameBufferPool.Put(b)
	}
}
