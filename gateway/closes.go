package gateway

import (
	"strconv"
	"sync"
)

// closeRecord is how a session's connection ended, for its access line:
// the first close frame sent or received, whether ours reached the client,
// and why the connection was lost if it was.
type closeRecord struct {
	mu        sync.Mutex
	code      int // of the first close frame; 0 while none
	reason    string
	ours      bool // we sent the first close frame
	delivered bool // the client got ours: it answered, or its TCP took it all
	lost      string
}

// send records a close frame of ours, unless one was sent or received
// already or the connection is lost, and reports whether it was the first.
func (c *closeRecord) send(code int, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.code != 0 || c.lost != "" {
		return false
	}
	c.code, c.reason, c.ours = code, reason, true
	return true
}

// receive records the client's close frame: the first, or the answer to
// ours.
func (c *closeRecord) receive(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.code == 0 {
		c.code, c.reason = code, reason
	}
	c.delivered = true
}

// closingByUs reports whether we sent the first close frame: from then on
// the client's input is no longer wanted.
func (c *closeRecord) closingByUs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ours
}

// deliver records that our close frame reached the client.
func (c *closeRecord) deliver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered = true
}

// lose records that the connection ended without a close handshake.
func (c *closeRecord) lose(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost == "" {
		c.lost = reason
	}
}

// outcome returns the close code and reason the client saw: 1006 when it
// got no close frame.
func (c *closeRecord) outcome() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.code == 0:
		return closeAbnormal, c.lost
	case c.ours && !c.delivered && c.lost != "":
		return closeAbnormal, c.lost + "; close " + strconv.Itoa(c.code) + " not delivered"
	}
	return c.code, c.reason
}
