package gateway

import (
	"sync"

	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/wsconn"
)

// member is a session's place in a broadcast stream: the sink the stream
// wakes. Woken by a delivery worker, it sends what waits at once, as far as
// the client's socket takes it without waiting; what does not go at once,
// and the control frames, a pump sends: a goroutine only while there is
// something to write, so that an idle member holds none. One of the two
// writes at a time (running), and it is the wire's only writer.
type member struct {
	bs  *stream // the broadcast stream it is a member of
	sub *broadcast.Subscriber
	// follow is what a client that follows positions asked (resume.go);
	// nil for one that does not. greeting is its first message, until the
	// writer sends it.
	follow   *following
	greeting []byte

	mu         sync.Mutex
	s          *session // set once the handshake response is sent
	running    bool     // a worker or the pump is writing
	again      bool     // woken meanwhile: look again before stopping
	pending    bool     // woken before the session was ready
	overflowed bool     // cut off before the session was ready
	stopped    bool     // the session has ended: nothing more is written
	writers    sync.WaitGroup

	taken []*broadcast.Message // taken and not yet encoded: the writer's own
}

// exitStatus returns how the member's stream ended, or nil while it runs.
func (m *member) exitStatus() *string { return m.bs.exit.Load() }

// Wake sends what waits, or has the writer at work look again.
func (m *member) Wake() {
	m.mu.Lock()
	switch {
	case m.stopped:
		m.mu.Unlock()
		return
	case m.s == nil:
		m.pending = true
		m.mu.Unlock()
		return
	case m.running:
		m.again = true
		m.mu.Unlock()
		return
	}
	m.running = true
	m.writers.Add(1)
	m.mu.Unlock()
	for m.sendNow() {
		if m.done() {
			return
		}
	}
	go m.pump()
}

// Overflow closes the client with 1013: it fell too far behind.
func (m *member) Overflow() {
	m.mu.Lock()
	s := m.s
	if s == nil {
		m.overflowed = true
	}
	m.mu.Unlock()
	if s != nil {
		s.tooSlow()
	}
}

// ready attaches the session, once the handshake response is sent, and
// starts what was asked before.
func (m *member) ready(s *session) {
	m.mu.Lock()
	m.s = s
	pending, overflowed := m.pending, m.overflowed
	greets := m.greeting != nil // read before a writer can start and clear it
	m.mu.Unlock()
	if overflowed {
		s.tooSlow()
	}
	if pending || greets {
		m.Wake()
	}
}

// stop waits for the writer at work and lets no other start.
func (m *member) stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.writers.Wait()
}

// done ends the writer's turn, and reports false when it was woken
// meanwhile and must look again.
func (m *member) done() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.again {
		m.again = false
		return false
	}
	m.running = false
	m.writers.Done()
	return true
}

// sendNow sends the messages waiting, as far as the client's socket takes
// them at once, and reports whether all went: if not, the pump is to send
// the rest (what the batch holds, then m.taken, then the stream's). Control
// frames waiting, the stream's end and a TLS connection are the pump's too.
func (m *member) sendNow() bool {
	s, w := m.s, m.s.wire
	if m.greeting != nil && !m.greet() {
		return false
	}
	var scratch [takeBatch]*broadcast.Message // on the stack: no allocation per line
	var taken []*broadcast.Message            // taken and not yet sent, at the start of scratch
	for {
		// What was left, then a chunk's worth more: tagged lines encode to
		// more than Take counts, and what does not fit goes in the next.
		if n := copy(scratch[:], taken); n < len(scratch) {
			taken = append(scratch[:n], m.sub.Take(scratch[n:n], wsconn.WriteChunk)...)
		}
		if len(taken) == 0 {
			return !w.ControlsWaiting()
		}
		// A chunk at most: WriteNow writes a batch of one.
		n := m.encode(taken, wsconn.WriteChunk)
		if n == 0 || !w.WriteNow(&s.out) { // the stream's end, or the socket is full
			m.taken = append(m.taken[:0], taken[n:]...)
			s.out.Shrink() // the pump may be a while coming
			return false
		}
		taken = taken[n:]
	}
}

// encode adds the messages to the session's batch, each as encoded once
// for every member (compressed once for the members that negotiated
// permessage-deflate), and returns how many it added: it stops before the
// stream's end, once it has added limit bytes or more, and before a
// message the batch has no room for.
func (m *member) encode(msgs []*broadcast.Message, limit int) int {
	s := m.s
	added := 0 // the batch is empty, or limit is the batch's own
	for i, msg := range msgs {
		if msg.Last || added >= limit {
			return i
		}
		data, size := m.form(msg, s.deflate)
		if s.out.Full(len(data)) {
			return i
		}
		s.out.Encoded(data, size)
		added += len(data)
	}
	return len(msgs)
}

// pump sends what sendNow left, the control frames asked for, and what the
// stream holds for the member, until nothing waits.
func (m *member) pump() {
	for {
		m.drain()
		if m.done() {
			return
		}
	}
}

// drain writes what the batch holds, the control frames asked for and
// every message waiting, and after the last one the stream's close frame.
// It stops at a write that fails: the wire then takes nothing more.
func (m *member) drain() {
	s, w := m.s, m.s.wire
	if w.Write(&s.out) != nil { // what sendNow could not finish, if anything
		return
	}
	var scratch [takeBatch]*broadcast.Message // on the stack: no allocation per line
	taken := m.taken                          // what sendNow took and left, if anything
	m.taken = nil                             // an idle member holds no buffer
	for {
		if len(taken) == 0 {
			if taken = m.sub.Take(scratch[:0], wsconn.BatchLimit); len(taken) == 0 {
				return
			}
		}
		n := m.encode(taken, wsconn.BatchLimit)
		if n < len(taken) && taken[n].Last {
			_ = w.Write(&s.out)
			s.streamEnded(taken[n].Data)
			return
		}
		taken = taken[n:]
		if w.Write(&s.out) != nil {
			return
		}
	}
}
