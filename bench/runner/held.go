package main

import (
	"context"
	"fmt"

	"github.com/gorilla/websocket"
)

// heldConn is a connection the idle and scale scenarios keep open. Its
// readPump goroutine reads all the time, as a browser does, so that the
// server's pings are answered during a hold (gorilla answers pings only
// inside a read) and a server with keepalives does not drop the client.
//
// Concurrency: readPump is the only reader; roundTrip is the only writer of
// data messages and is not called concurrently for one connection; closeNow
// may run alongside readPump.
type heldConn struct {
	c       *websocket.Conn
	replies chan []byte // readPump's messages; closed when it stops
	err     error       // why readPump stopped; read only after replies is closed
}

// holdConn starts the reader of a freshly dialled connection.
func holdConn(c *websocket.Conn) *heldConn {
	h := &heldConn{c: c, replies: make(chan []byte, 1)}
	go h.readPump()
	return h
}

// readPump hands every text message to replies until the connection fails,
// is closed, or reaches the scenario's deadline, which dial set.
func (h *heldConn) readPump() {
	defer close(h.replies)
	for {
		msg, err := readText(h.c, nil)
		if err != nil {
			h.err = err
			return
		}
		h.replies <- msg
	}
}

// roundTrip sends msg and checks that the next message is exactly msg.
func (h *heldConn) roundTrip(msg []byte) error {
	if err := h.c.WriteMessage(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	got, ok := <-h.replies
	if !ok {
		return fmt.Errorf("read echo: %w", h.err)
	}
	return mismatch(got, msg)
}

// openEchoConns opens n connections with at most workers handshakes in
// flight, and proves each one has a live child by a round trip. On error it
// closes whatever it had opened.
func openEchoConns(ctx context.Context, url string, n, workers int) ([]*heldConn, error) {
	conns := make([]*heldConn, n)
	err := forEach(ctx, n, workers, func(i int) error {
		c, err := dial(ctx, url)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i] = holdConn(c)
		if err := conns[i].roundTrip(connMessage(i, 0)); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		closeAll(conns, workers)
		return nil, err
	}
	return conns, nil
}

// echoAll makes one more verified round trip on every connection.
func echoAll(ctx context.Context, conns []*heldConn, workers, round int) error {
	return forEach(ctx, len(conns), workers, func(i int) error {
		if err := conns[i].roundTrip(connMessage(i, round)); err != nil {
			return fmt.Errorf("connection %d, round %d: %w", i, round, err)
		}
		return nil
	})
}

// connMessage is the payload connection i sends in a given round; it is
// unique so that a reply routed to the wrong connection is caught.
func connMessage(i, round int) []byte {
	return fmt.Appendf(nil, "conn %d round %d", i, round)
}

// closeAll closes every opened connection without waiting for replies,
// spread over workers goroutines because each close is a write. Closing the
// socket also ends each readPump.
func closeAll(conns []*heldConn, workers int) {
	forEach(context.Background(), len(conns), workers, func(i int) error {
		if conns[i] != nil {
			closeNow(conns[i].c)
		}
		return nil
	})
}
