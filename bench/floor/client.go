package main

import (
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// writeWait bounds each write to a client, as in gorilla's examples/chat.
const writeWait = 10 * time.Second

// hubUpgrader has examples/chat's buffer sizes and, like the floor's other
// upgrader, allows every origin.
var hubUpgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// client is one WebSocket connection of the hub, and its channel of
// messages to send.
type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
	raw  syscall.RawConn // the bound's way to the socket (bound.go); nil for the floor
}

// ServeHTTP upgrades the request and registers the client with the hub;
// its two pumps then serve it (examples/chat's serveWs). The client is
// registered before its readPump starts, so the hub has it before anything
// it sends can reach the child.
func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := hubUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered the client.
	}
	if h.maxFrame > 0 {
		conn.SetReadLimit(h.maxFrame)
	}
	c := &client{hub: h, conn: conn, send: make(chan *websocket.PreparedMessage, h.queue)}
	if tcp, ok := conn.NetConn().(*net.TCPConn); ok && h.direct {
		c.raw, _ = tcp.SyscallConn() // nil on an error: every write is then the blocking one
	}
	h.register <- c
	go c.writePump()
	go c.readPump()
}

// readPump writes every message from the client to the shared stdin until
// the client goes, then unregisters it. It is the connection's only reader.
// A failed write means the child is gone; the hub then closes every client.
func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = c.hub.stdin.writeLine(msg)
	}
}

// writePump writes each message of the client's channel, framed once for
// every client, and a close frame when the hub closes the channel. It is the
// connection's only writer.
func (c *client) writePump() {
	defer c.conn.Close()
	for msg := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WritePreparedMessage(msg); err != nil {
			return // readPump fails too, and unregisters the client
		}
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}
