// Package broadcast fans one stream of messages out to many subscribers, in
// the same order for all. It knows nothing of WebSocket or of processes: a
// message is opaque bytes, encoded once by whoever publishes it and shared by
// every subscriber.
//
// The stream keeps what it published in one ring, shared by all; each
// subscriber has only a cursor into it. A subscriber's queue is what lies
// between its cursor and the head, bounded: publishing never blocks, and a
// subscriber that falls further behind is cut off from the stream (its
// Overflow is called) and gets nothing more, so what it was given is a
// gap-free run of the stream, and it never holds back the publisher or the
// other subscribers. The ring grows on demand and lets go of what every
// subscriber has taken, so a stream whose subscribers keep up holds little
// more than its replay: the last messages, which a subscriber that joins gets
// first, with no gap and no duplicate at the seam.
//
// A few delivery workers, started by the stream while there is something to
// deliver, visit the subscribers after each publication and wake those that
// have messages waiting; a subscriber's sink takes them with Take.
package broadcast

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Message is one message of a stream, shared by every subscriber. It must
// not be changed once published.
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
	// Seq is the message's place in its stream, from 1 (position.go): set
	// by the bus that numbers it, else by Stream.Publish; 0 for the end.
	Seq uint64

	tag tagging // the form with its position in front, made on demand
}

// Sink is a subscriber's end of the stream: the owner that takes its
// messages and sends them on.
type Sink interface {
	// Wake says messages wait for the subscriber: Take has work. A delivery
	// worker calls it, with no lock held, and the other subscribers of the
	// worker wait meanwhile: it may send what it takes at once, but must
	// not wait for a slow client; what cannot go at once it sends from a
	// goroutine of its own.
	Wake()
	// Overflow says the subscriber fell more than its queue behind: it has
	// been cut off from the stream and will be given nothing more. It is
	// called with no lock held.
	Overflow()
}

// minRing is the ring's first size: it grows on demand, doubling.
const minRing = 16

// Stream is one stream of messages and its subscribers. Its methods are safe
// for concurrent use.
type Stream struct {
	queueLimit int64
	replay     int64
	ringMax    int // the ring's largest size, a power of two

	// head and dataHead are written under mu and read without it by the
	// delivery workers: the sequence number of the next message, and of the
	// one after the last data message (all but the end).
	head, dataHead atomic.Int64

	mu         sync.Mutex
	ring       []*Message // messages tail to head-1, at seq & (len-1); a power of two long
	tail       int64
	subs       []*Subscriber
	snapshot   []*Subscriber // subs as the delivery workers see them, rebuilt when dirty
	dirty      bool
	workers    []worker
	delivering int // workers running
	idle       *sync.Cond
	published  int64
	joined     int64
	ended      bool

	// The stream's history (position.go): its epoch, and the sequence
	// number of the message at ring index 0. Set by Begin, before any
	// message; read under mu.
	epoch string
	first uint64
}

// worker is the state of one delivery worker, guarded by the stream's mu.
// Worker k visits the subscribers at k, k+len(workers) and so on.
type worker struct {
	running bool
	again   bool // published since the pass began: pass again
}

// NewStream returns a stream whose subscribers queue at most queueLimit
// messages, and that replays the last replay messages to a subscriber that
// joins with replay. The replay comes on top of the queue: a newcomer does
// not start with a full queue.
func NewStream(queueLimit, replay int) *Stream {
	s := &Stream{
		queueLimit: int64(queueLimit),
		replay:     int64(max(replay, 0)),
		ringMax:    ceilPow2(queueLimit + max(replay, 0) + 1), // +1: the end
		workers:    make([]worker, runtime.GOMAXPROCS(0)),
		first:      1,
	}
	s.idle = sync.NewCond(&s.mu)
	return s
}

// ceilPow2 returns the least power of two not below n, and at least minRing.
func ceilPow2(n int) int {
	p := minRing
	for p < n {
		p *= 2
	}
	return p
}

// Subscriber is one subscriber's place in the stream.
type Subscriber struct {
	stream *Stream
	sink   Sink
	limit  int64 // how far behind it may fall: the queue, and the replay it was given
	index  int   // in the stream's subs, under its mu; -1 once cut off or gone
	cursor atomic.Int64
	gone   atomic.Bool
}

// Join adds a subscriber taking its messages through sink, and reports
// false if the stream has ended. With replay, the subscriber starts with the
// replay; every message published after Join returns reaches it.
func (s *Stream) Join(sink Sink, replay bool) (*Subscriber, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, false
	}
	cursor := s.head.Load()
	if replay {
		cursor = s.replayStart()
	}
	return s.add(sink, cursor), true
}

// replayStart returns the ring index of the first message of the replay,
// with s.mu held.
func (s *Stream) replayStart() int64 {
	head := s.head.Load()
	return head - min(s.replay, head-s.tail)
}

// add subscribes sink from ring index cursor, at most the head, with s.mu
// held: what lies between them comes on top of its queue.
func (s *Stream) add(sink Sink, cursor int64) *Subscriber {
	given := max(s.head.Load()-cursor, 0)
	sub := &Subscriber{stream: s, sink: sink, limit: s.queueLimit + given, index: len(s.subs)}
	sub.cursor.Store(cursor)
	s.subs = append(s.subs, sub)
	s.dirty = true
	s.joined++
	if given > 0 {
		s.kick()
	}
	return sub
}

// Leave removes a subscriber and returns how many remain. Leaving twice, or
// after being cut off, is harmless.
func (s *Stream) Leave(sub *Subscriber) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(sub)
	return len(s.subs)
}

// remove takes sub out of subs, with s.mu held.
func (s *Stream) remove(sub *Subscriber) {
	sub.gone.Store(true)
	i := sub.index
	if i < 0 {
		return
	}
	last := len(s.subs) - 1
	moved := s.subs[last]
	s.subs[i] = moved
	moved.index = i
	s.subs[last] = nil
	s.subs = s.subs[:last]
	sub.index = -1
	s.dirty = true
	// The subscriber moved into the hole may now be another worker's, one
	// that has passed already and would not come back to it: with messages
	// waiting, it gets a pass.
	if moved != sub && moved.cursor.Load() < s.head.Load() {
		s.kick()
	}
}

// Publish gives m to every subscriber, and keeps it for replay. It never
// blocks on a subscriber.
func (s *Stream) Publish(m *Message) { s.PublishAll([]*Message{m}) }

// PublishAll publishes msgs, in order, as Publish does each, with one pass
// of the delivery workers for all of them.
func (s *Stream) PublishAll(msgs []*Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || len(msgs) == 0 {
		return
	}
	for _, m := range msgs {
		s.published++
		if m.Seq == 0 {
			m.Seq = s.seqAt(s.head.Load())
		}
		s.push(m)
	}
	s.dataHead.Store(s.head.Load())
	if len(s.subs) == 0 {
		s.trim()
		return
	}
	s.kick()
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
	s.push(last)
	s.kick()
}

// Stats returns how many messages were published and how many subscribers
// joined in all, and how many are subscribed now.
func (s *Stream) Stats() (published, joined int64, subscribed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.published, s.joined, len(s.subs)
}

// Wait returns once no delivery worker runs: after End, once every
// subscriber has been woken for the last message.
func (s *Stream) Wait() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.delivering > 0 {
		s.idle.Wait()
	}
}

// push appends m to the ring, growing it, or when it is as big as it gets
// dropping the oldest message, which every subscriber still subscribed has
// then taken (else it is further behind than its limit), with s.mu held.
func (s *Stream) push(m *Message) {
	head := s.head.Load()
	if head-s.tail == int64(len(s.ring)) {
		if len(s.ring) < s.ringMax {
			s.grow()
		} else {
			s.ring[s.tail&int64(len(s.ring)-1)] = nil
			s.tail++
		}
	}
	s.ring[head&int64(len(s.ring)-1)] = m
	s.head.Store(head + 1)
}

// grow doubles the ring, with s.mu held.
func (s *Stream) grow() { s.resize(max(minRing, 2*len(s.ring))) }

// resize moves what the ring holds to one of size places, a power of two
// big enough, with s.mu held.
func (s *Stream) resize(size int) {
	ring := make([]*Message, size)
	for seq := s.tail; seq < s.head.Load(); seq++ {
		ring[seq&int64(len(ring)-1)] = s.ring[seq&int64(len(s.ring)-1)]
	}
	s.ring = ring
}

// trim lets go of the messages every subscriber has taken, but the replay,
// with s.mu held. It looks at every cursor: a cost of a few ns a subscriber
// once a pass, which spares the passes any bookkeeping of joins. When none is subscribed, the ring is back to nothing but
// the replay.
func (s *Stream) trim() {
	low := s.dataHead.Load() - s.replay
	for _, sub := range s.subs {
		low = min(low, sub.cursor.Load())
	}
	for s.tail < low {
		s.ring[s.tail&int64(len(s.ring)-1)] = nil
		s.tail++
	}
	if held := s.head.Load() - s.tail; held == 0 && !s.ended {
		s.ring = nil // nothing held: the next message starts a small ring
	} else if len(s.ring) > minRing && held*4 <= int64(len(s.ring)) {
		s.resize(len(s.ring) / 2) // grown for a burst, or a subscriber that was behind
	}
}

// kick has every delivery worker pass over the subscribers, starting those
// that are not running, with s.mu held.
func (s *Stream) kick() {
	for k := range s.workers {
		w := &s.workers[k]
		if w.running {
			w.again = true
			continue
		}
		w.running = true
		s.delivering++
		go s.deliver(k)
	}
}

// deliver is delivery worker k: it passes over its share of the
// subscribers, waking each that has messages waiting and cutting off each
// that fell too far behind, until a pass begins with nothing new published.
func (s *Stream) deliver(k int) {
	for {
		s.mu.Lock()
		w := &s.workers[k]
		w.again = false
		if s.dirty {
			s.snapshot = append([]*Subscriber(nil), s.subs...)
			s.dirty = false
		}
		subs := s.snapshot
		s.mu.Unlock()

		s.pass(subs, k)

		s.mu.Lock()
		s.trim()
		if !w.again {
			w.running = false
			s.delivering--
			if s.delivering == 0 {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// pass visits worker k's share of subs.
func (s *Stream) pass(subs []*Subscriber, k int) {
	for i := k; i < len(subs); i += len(s.workers) {
		sub := subs[i]
		if sub.gone.Load() {
			continue
		}
		head := s.head.Load()
		if c := sub.cursor.Load(); c < head {
			if s.tooFar(sub, c) {
				s.cutOff(sub)
				continue
			}
			sub.sink.Wake()
		}
	}
}

// tooFar reports whether a subscriber at cursor has more data messages
// waiting than its limit. The end does not count: it reaches every
// subscriber that kept within its limit.
func (s *Stream) tooFar(sub *Subscriber, cursor int64) bool {
	return s.dataHead.Load()-cursor > sub.limit
}

// cutOff takes a subscriber that fell too far behind out of the stream and
// tells its sink.
func (s *Stream) cutOff(sub *Subscriber) {
	s.mu.Lock()
	if sub.gone.Load() {
		s.mu.Unlock()
		return
	}
	s.remove(sub)
	s.mu.Unlock()
	sub.sink.Overflow()
}

// Take puts the oldest messages waiting for the subscriber in buf, from its
// start, and returns it: as many as carry maxSize bytes of Data or more (all
// of them when maxSize is 0), and none when nothing waits or the subscriber
// is cut off. A buf with capacity gets no more than it holds, so that a
// sink taking into a buffer of its own allocates nothing per message; one
// with none grows to take them all. A subscriber found further behind than
// its limit is cut off here (its sink's Overflow is called before Take
// returns).
func (sub *Subscriber) Take(buf []*Message, maxSize int) []*Message {
	s := sub.stream
	buf = buf[:0]
	room := cap(buf)
	if room == 0 {
		room = -1 // no bound: buf grows
	}
	s.mu.Lock()
	if sub.gone.Load() {
		s.mu.Unlock()
		return buf
	}
	cursor, head := sub.cursor.Load(), s.head.Load()
	if s.tooFar(sub, cursor) || cursor < s.tail {
		s.mu.Unlock()
		s.cutOff(sub)
		return buf
	}
	size := 0
	for ; cursor < head && (maxSize <= 0 || size < maxSize) && len(buf) != room; cursor++ {
		m := s.ring[cursor&int64(len(s.ring)-1)]
		buf = append(buf, m)
		size += len(m.Data)
	}
	sub.cursor.Store(cursor)
	s.mu.Unlock()
	return buf
}
