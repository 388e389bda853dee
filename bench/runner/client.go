package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// handshakeTimeout bounds one WebSocket handshake, spawn included.
	handshakeTimeout = 10 * time.Second
	// closeReplyWait bounds how long a client waits for the server's close
	// frame after sending its own.
	closeReplyWait = 2 * time.Second
)

// dialer is shared by every client connection; its buffers are gorilla's
// defaults, which is what a typical client uses.
var dialer = &websocket.Dialer{HandshakeTimeout: handshakeTimeout}

// bigDialer is for the big scenario: with 1 MiB buffers a 16 MiB message
// crosses the client in a few large reads and writes, so that the figure is
// the server's, not 4,096 small frames' worth of client overhead.
var bigDialer = &websocket.Dialer{
	HandshakeTimeout: handshakeTimeout,
	ReadBufferSize:   1 << 20,
	WriteBufferSize:  1 << 20,
}

// dial opens a WebSocket to url and ties the connection to ctx: its deadline
// applies to every read and write, and cancelling ctx closes the connection,
// so that no benchmark can block past its time limit or an interrupt.
func dial(ctx context.Context, url string) (*websocket.Conn, error) {
	return dialWith(ctx, dialer, url)
}

// dialWith is dial with a chosen dialer.
func dialWith(ctx context.Context, d *websocket.Dialer, url string) (*websocket.Conn, error) {
	return dialHeader(ctx, d, url, nil)
}

// dialHeader is dialWith with the handshake's headers.
func dialHeader(ctx context.Context, d *websocket.Dialer, url string, header http.Header) (*websocket.Conn, error) {
	c, resp, err := d.DialContext(ctx, url, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	if end, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(end)
		c.SetWriteDeadline(end)
	}
	// An interrupt cancels the context before the deadline: closing the
	// socket then unblocks whatever is reading or writing it.
	context.AfterFunc(ctx, func() { c.Close() })
	return c, nil
}

// readText reads the next message into buf (reusing its storage) and
// returns it. Anything but a text message is an error.
func readText(c *websocket.Conn, buf []byte) ([]byte, error) {
	typ, r, err := c.NextReader()
	if err != nil {
		return buf[:0], err
	}
	if typ != websocket.TextMessage {
		return buf[:0], fmt.Errorf("got message type %d, want text", typ)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// roundTrip sends msg and checks that the next message is exactly msg.
func roundTrip(c *websocket.Conn, msg, buf []byte) ([]byte, error) {
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		return buf, fmt.Errorf("send: %w", err)
	}
	got, err := readText(c, buf)
	if err != nil {
		return got, fmt.Errorf("read echo: %w", err)
	}
	return got, mismatch(got, msg)
}

// mismatch describes how got differs from want, or returns nil if equal.
func mismatch(got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("wrong data: got %d bytes, want %d, first difference at byte %d: got %q, want %q",
		len(got), len(want), i, excerpt(got, i), excerpt(want, i))
}

// excerpt returns up to 32 bytes of b from offset i, for error messages.
func excerpt(b []byte, i int) []byte {
	end := min(i+32, len(b))
	return b[min(i, end):end]
}

// closeGracefully performs the closing handshake: send a close frame, wait
// (bounded) for the server's, then drop the TCP connection.
func closeGracefully(c *websocket.Conn) {
	deadline := time.Now().Add(closeReplyWait)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if c.WriteControl(websocket.CloseMessage, msg, deadline) == nil {
		c.SetReadDeadline(deadline)
		for {
			if _, _, err := c.NextReader(); err != nil {
				break // the close frame, EOF or the deadline
			}
		}
	}
	c.Close()
}

// closeNow sends a close frame and drops the connection without waiting for
// the reply, as a client that leaves a page does.
func closeNow(c *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeReplyWait))
	c.Close()
}

// forEach calls fn(i) for every i in [0, n) from at most workers goroutines.
// The first error stops the hand-out of further indexes and is returned.
func forEach(ctx context.Context, n, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Nil when every call succeeded; otherwise the first error, or the
	// parent's deadline or cancellation.
	return context.Cause(ctx)
}
