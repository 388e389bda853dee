package main

import (
	"encoding/binary"
	"sync"
	"syscall"
)

// With --direct the hub is the bound of broadcast mode rather than its
// floor: the least CPU and latency that one write(2) of a line to each
// client's socket costs, whatever a server does around it. run writes each
// line's frame to every socket itself, half the clients from a second
// goroutine so that both cores write, with no queue, no write pump and no
// WebSocket library on the write path. A socket that takes only part of a
// frame gets the rest by a blocking write, so that nothing is lost: then
// that client holds back every other, which no server should do. It is a
// yardstick for the fan-out scenarios' latency, not a design.

// writeDirect writes frame to every client, and returns once every write
// is done.
func (h *hub) writeDirect(frame []byte) {
	clients := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	half := len(clients) / 2
	var other sync.WaitGroup
	other.Go(func() { writeEach(clients[:half], frame) })
	writeEach(clients[half:], frame)
	other.Wait()
}

// writeEach writes frame to each client's socket, one write(2) each while
// the socket takes it whole.
func writeEach(clients []*client, frame []byte) {
	for _, c := range clients {
		n, err := c.writeNow(frame)
		if err != nil {
			continue // the client is gone: its readPump unregisters it
		}
		if n < len(frame) {
			_, _ = c.conn.NetConn().Write(frame[n:])
		}
	}
}

// writeNow writes what the client's socket takes of p without waiting.
// RawConn's Write holds the descriptor open meanwhile, so a client closing
// at the same time cannot hand its number to another socket.
func (c *client) writeNow(p []byte) (int, error) {
	if c.raw == nil {
		return 0, nil // no descriptor: all by the blocking write
	}
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true // never wait here
	})
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return n, nil
}

// textFrame returns a server's unmasked text frame carrying payload.
func textFrame(payload []byte) []byte {
	frame := make([]byte, 0, 10+len(payload))
	switch n := len(payload); {
	case n < 126:
		frame = append(frame, 0x81, byte(n))
	case n <= 0xffff:
		frame = binary.BigEndian.AppendUint16(append(frame, 0x81, 126), uint16(n))
	default:
		frame = binary.BigEndian.AppendUint64(append(frame, 0x81, 127), uint64(n))
	}
	return append(frame, payload...)
}
