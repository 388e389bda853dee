package wsconn

import (
	"strconv"
	"sync"
)

// CloseRecord is how a session's connection ended, for its access line:
// the first close frame sent or received, whether ours reached the client,
// and why the connection was lost if it was.
type CloseRecord struct {
	mu        sync.Mutex
	code      int // of the first close frame; 0 while none
	reason    string
	ours      bool // we sent the first close frame
	delivered bool // the client got ours: it answered, or its TCP took it all
	lost      string
}

// Send records a close frame of ours, unless one was sent or received
// already or the connection is lost, and reports whether it was the first.
func (c *CloseRecord) Send(code int, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.code != 0 || c.lost != "" {
		return false
	}
	c.code, c.reason, c.ours = code, reason, true
	return true
}

// Receive records the client's close frame: the first, or the answer to
// ours.
func (c *CloseRecord) Receive(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.code == 0 {
		c.code, c.reason = code, reason
	}
	c.delivered = true
}

// ClosingByUs reports whether we sent the first close frame: from then on
// the client's input is no longer wanted.
func (c *CloseRecord) ClosingByUs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ours
}

// Deliver records that our close frame reached the client.
func (c *CloseRecord) Deliver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered = true
}

// Lose records that the connection ended without a close handshake.
func (c *CloseRecord) Lose(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost == "" {
		c.lost = reason
	}
}

// Outcome returns the close code and reason the client saw: 1006 when it
// got no close frame.
func (c *CloseRecord) Outcome() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.code == 0:
		return CloseAbnormal, c.lost
	case c.ours && !c.delivered && c.lost != "":
		return CloseAbnormal, c.lost + "; close " + strconv.Itoa(c.code) + " not delivered"
	}
	return c.code, c.reason
}

// CloseAbnormal is the code logged for a connection that ended without any
// close frame (RFC 6455 reserves 1006 for exactly this).
const CloseAbnormal = 1006
