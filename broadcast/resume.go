package broadcast

import "time"

// Resuming: a subscriber that follows positions (position.go) joins after
// the position it has, when the stream's history still holds what follows
// it, or else with the replay, told that it starts over.

// Begin gives the stream its history: its epoch, and the sequence number of
// the first message it will be given (1 for a new stream; on a bus, the one
// after what the bus has published before). Call it before any message is
// published; without it, the epoch is "" and numbers start at 1.
func (s *Stream) Begin(epoch string, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head.Load() > 0 {
		return // numbered already
	}
	s.epoch, s.first = epoch, max(next, 1)
}

// Joined says where a subscriber that follows positions starts.
type Joined struct {
	// Before is the position just before the first message it gets.
	Before Position
	// Continues says that what it gets follows exactly from the position
	// it gave (or, when it gave none, from just before the replay); false
	// when that position is not in the stream's history and it gets the
	// replay instead: it starts over.
	Continues bool
}

// Greeting is the first message of a subscriber that follows positions,
// where it stands: "id: EPOCH:SEQ\nevent: joined\n\n" when what follows
// continues from where it was, "event: reset" when it starts over.
func (j Joined) Greeting() []byte {
	event := "reset"
	if j.Continues {
		event = "joined"
	}
	text := j.Before.AppendText([]byte("id: "))
	return append(append(append(text, "\nevent: "...), event...), "\n\n"...)
}

// JoinAfter adds a subscriber that follows positions: from just after at,
// when at is in the stream's history (its epoch, and no further back than
// the replay, nor beyond the last message), else from the start of the
// replay. A nil at asks for the replay. It reports false if the stream has
// ended.
func (s *Stream) JoinAfter(sink Sink, at *Position) (*Subscriber, Joined, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, Joined{}, false
	}
	cursor, continues := s.replayStart(), at == nil
	if at != nil {
		if i, ok := s.indexAfter(*at); ok && i >= cursor {
			cursor, continues = i, true
		}
	}
	sub := s.add(sink, cursor)
	return sub, Joined{Before: Position{Epoch: s.epoch, Seq: s.seqAt(cursor) - 1}, Continues: continues}, true
}

// Reached reports whether the stream has published the message at p, or
// p is of another history: whether waiting can change what JoinAfter makes
// of p. A position of this history beyond the last message may be one that
// another instance has delivered and the bus is still bringing here.
func (s *Stream) Reached(p Position) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.Epoch != s.epoch || p.Seq < s.seqAt(s.dataHead.Load())
}

// AwaitReached waits while p is of the stream's history but beyond what it
// has published (Reached), for within at most or until stop is closed: the
// bus may still be bringing that message here.
func (s *Stream) AwaitReached(p Position, within time.Duration, stop <-chan struct{}) {
	if s.Reached(p) {
		return
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !s.Reached(p) {
		select {
		case <-stop:
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// Last returns the position of the last message published: Seq 0 before
// the first of a new stream.
func (s *Stream) Last() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Position{Epoch: s.epoch, Seq: s.seqAt(s.dataHead.Load()) - 1}
}

// seqAt returns the sequence number of the message at ring index i, with
// s.mu held, or from the publisher's side.
func (s *Stream) seqAt(i int64) uint64 { return s.first + uint64(i) }

// indexAfter returns the ring index of the message that follows p, when p
// is of this history and not beyond the last message, with s.mu held.
func (s *Stream) indexAfter(p Position) (int64, bool) {
	if p.Epoch != s.epoch || p.Seq+1 < s.first || p.Seq == ^uint64(0) {
		return 0, false
	}
	i := p.Seq + 1 - s.first
	if i > uint64(s.dataHead.Load()) {
		return 0, false
	}
	return int64(i), true
}
