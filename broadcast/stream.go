// Package broadcast fans one stream of messages out to many subscribers, in
// the same order for all. It knows nothing of WebSocket or of processes: a
// message is opaque bytes, encoded once by whoever publishes it and shared by
// every subscriber's queue.
//
// Each subscriber has a bounded queue that grows on demand. Publishing never
// blocks: a subscriber whose queue is full is cut off from the stream (its
// Overflow is called) and gets nothing more, so what it was given is a
// gap-free run of the stream, and it never holds back the publisher or the
// other subscribers. A replay buffer gives a subscriber that joins the last
// messages first, with no gap and no duplicate at the seam.
package broadcast

import (
	"sync"
)

// Message is one message of a stream, shared by every queue it is in. It
// must not be changed once published.
type Message struct {
	// Data is what subscribers send, as the publisher encoded it.
	Data []byte
	// Size is the size of what Data carries, for counting (a payload, say).
	Size int
	// Compressed is Data in a compressed encoding, no bigger, for the
	// subscribers that accept one; nil when Data is all there is.
	Compressed []byte
	// Last marks the message that ends the stream: nothing follows it.
	Last bool
}

// Sink is a subscriber's end of the stream: the owner that drains its queue.
// Its methods are called with the stream's lock held: they must not block
// and must not call back into the stream.
type Sink interface {
	// Wake says the queue went from empty to not empty: Take has work.
	Wake()
	// Overflow says the queue was full: the subscriber has been cut off
	// from the stream and will be given nothing more.
	Overflow()
}

// Stream is one stream of messages and its subscribers. Its methods are safe
// for concurrent use.
type Stream struct {
	queueLimit int

	mu        sync.Mutex
	subs      []*Subscriber
	replay    []*Message // the last messages, oldest first, at most cap(replay)
	published int64
	joined    int64
	ended     bool
}

// NewStream returns a stream whose subscribers queue at most queueLimit
// messages, and that replays the last replay messages to a subscriber that
// joins with replay. The replay comes on top of the queue: a newcomer does
// not start with a full queue.
func NewStream(queueLimit, replay int) *Stream {
	s := &Stream{queueLimit: queueLimit}
	if replay > 0 {
		s.replay = make([]*Message, 0, replay)
	}
	return s
}

// Subscriber is one subscriber's queue.
type Subscriber struct {
	sink   Sink
	index  int // in the stream's subs; -1 once cut off or gone
	extra  int // the replay it was given, allowed on top of the queue
	mu     sync.Mutex
	queue  []*Message
	closed bool
}

// Join adds a subscriber draining through sink, and reports false if the
// stream has ended. With replay, the subscriber's queue starts with the
// replay buffer; every message published after Join returns reaches it.
func (s *Stream) Join(sink Sink, replay bool) (*Subscriber, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, false
	}
	sub := &Subscriber{sink: sink, index: len(s.subs)}
	if replay && len(s.replay) > 0 {
		sub.queue = append(make([]*Message, 0, len(s.replay)), s.replay...)
		sub.extra = len(s.replay)
		sink.Wake()
	}
	s.subs = append(s.subs, sub)
	s.joined++
	return sub, true
}

// Leave removes a subscriber and returns how many remain. Its queue is
// dropped. Leaving twice, or after being cut off, is harmless.
func (s *Stream) Leave(sub *Subscriber) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(sub)
	sub.mu.Lock()
	sub.queue, sub.closed = nil, true
	sub.mu.Unlock()
	return len(s.subs)
}

// remove takes sub out of subs, with s.mu held.
func (s *Stream) remove(sub *Subscriber) {
	i := sub.index
	if i < 0 {
		return
	}
	last := len(s.subs) - 1
	s.subs[i] = s.subs[last]
	s.subs[i].index = i
	s.subs[last] = nil
	s.subs = s.subs[:last]
	sub.index = -1
}

// Publish gives m to every subscriber, and keeps it for replay. It never
// blocks on a subscriber.
func (s *Stream) Publish(m *Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.published++
	if cap(s.replay) > 0 {
		if len(s.replay) == cap(s.replay) {
			copy(s.replay, s.replay[1:])
			s.replay = s.replay[:len(s.replay)-1]
		}
		s.replay = append(s.replay, m)
	}
	for i := 0; i < len(s.subs); {
		sub := s.subs[i]
		if sub.offer(m, s.queueLimit) {
			i++
			continue
		}
		s.remove(sub) // moves the last subscriber to i
		sub.sink.Overflow()
	}
}

// End gives last to every subscriber after what it has queued, however full
// its queue, and ends the stream: Join fails from now on, and Publish drops.
func (s *Stream) End(last *Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	for _, sub := range s.subs {
		sub.offer(last, -1)
	}
}

// Stats returns how many messages were published and how many subscribers
// joined in all, and how many are subscribed now.
func (s *Stream) Stats() (published, joined int64, subscribed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.published, s.joined, len(s.subs)
}

// offer queues m unless the queue holds limit messages already (a negative
// limit: none), and wakes the sink when the queue was empty.
func (sub *Subscriber) offer(m *Message, limit int) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return true // leaving: Leave removes it
	}
	if limit >= 0 && len(sub.queue) >= limit+sub.extra {
		sub.queue, sub.closed = nil, true
		return false
	}
	sub.queue = append(sub.queue, m)
	if len(sub.queue) == 1 {
		sub.sink.Wake()
	}
	return true
}

// Take moves the oldest queued messages into buf and returns it: as many as
// carry maxSize bytes of Data or more (all of them when maxSize is 0), and
// none when nothing is queued. Taking a little at a time, a drainer that is
// stuck on a slow client keeps little of the stream alive. The next message
// queued after a Take that found the queue empty wakes the sink again.
func (sub *Subscriber) Take(buf []*Message, maxSize int) []*Message {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.queue) == 0 {
		sub.queue = nil // a subscriber that is keeping up holds no queue
		return buf[:0]
	}
	n, size := 0, 0
	for n < len(sub.queue) && (maxSize <= 0 || size < maxSize) {
		size += len(sub.queue[n].Data)
		n++
	}
	buf = append(buf[:0], sub.queue[:n]...)
	rest := copy(sub.queue, sub.queue[n:])
	clear(sub.queue[rest:])
	sub.queue = sub.queue[:rest]
	return buf
}
