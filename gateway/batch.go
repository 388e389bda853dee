package gateway

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// batchLimit is the most a batch holds before it is written anyway.
const batchLimit = 64 << 10

// clientReadBufferSize is the buffer client frames are read through.
const clientReadBufferSize = 2 << 10

// batchConn is the connection gorilla writes frames to. While the output
// copier holds a batch, frames (control frames from other goroutines
// included) collect in a buffer and go out in one write when it flushes; at
// other times writes pass straight through. So a burst of lines costs one
// system call, and a lone line is not delayed.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	holding  bool
	buf      *[]byte   // from bufferPool while holding
	deadline time.Time // the write deadline last asked for
	applied  time.Time // the write deadline set on Conn
}

// SetWriteDeadline records the deadline for the next write to Conn. gorilla
// sets it before every frame; applying it only when it changes saves a
// timer update per frame.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

// write writes p to Conn under the recorded deadline; c.mu is held.
func (c *batchConn) write(p []byte) (int, error) {
	if !c.deadline.Equal(c.applied) {
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return 0, err
		}
		c.applied = c.deadline
	}
	return c.Conn.Write(p)
}

// hold starts collecting writes.
func (c *batchConn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = true
}

// flush writes what was collected and stops collecting.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	return c.writeHeld()
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding && len(p) < batchLimit {
		if c.buf == nil {
			c.buf = getBuffer()
		}
		if len(*c.buf)+len(p) <= batchLimit {
			*c.buf = append(*c.buf, p...)
			return len(p), nil
		}
	}
	if err := c.writeHeld(); err != nil {
		return 0, err
	}
	return c.write(p)
}

// writeHeld writes the collected frames; c.mu is held.
func (c *batchConn) writeHeld() error {
	if c.buf == nil {
		return nil
	}
	_, err := c.write(*c.buf)
	putBuffer(c.buf)
	c.buf = nil
	return err
}

// hijackWriter hands gorilla a batchConn when it hijacks the connection, and
// keeps the buffered reader gorilla reads from, so the session can tell
// whether more client messages are already waiting.
type hijackWriter struct {
	http.ResponseWriter
	conn   *batchConn
	raw    net.Conn // the TCP or Unix connection, under any TLS
	reader *bufio.Reader
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
	h.conn = &batchConn{Conn: conn}
	if brw.Reader.Buffered() == 0 {
		// A smaller reader than net/http's 4 KiB: it is held for the whole
		// life of an idle session. gorilla reads big payloads past it.
		brw.Reader = bufio.NewReaderSize(h.conn, clientReadBufferSize)
	}
	h.reader = brw.Reader
	return h.conn, brw, nil
}

// bufferPool holds the buffers that sessions use only while data moves, so
// that an idle session holds none.
var bufferPool = sync.Pool{New: func() any {
	b := make([]byte, 0, batchLimit)
	return &b
}}

func getBuffer() *[]byte {
	b := bufferPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func putBuffer(b *[]byte) {
	if cap(*b) == batchLimit {
		bufferPool.Put(b)
	}
}
