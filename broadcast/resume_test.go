package broadcast

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestParsePositionTable(t *testing.T) {
	t.Parallel()
	good := map[string]Position{
		"abc:0":                        {"abc", 0},
		"k3v9q2x7m1AB:42":              {"k3v9q2x7m1AB", 42},
		"e:18446744073709551615":       {"e", ^uint64(0)},
		strings.Repeat("z", 64) + ":7": {strings.Repeat("z", 64), 7},
		"Z9:007":                       {"Z9", 7},
	}
	for in, want := range good {
		got, err := ParsePosition(in)
		if err != nil || got != want {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", in, got, err, want)
		}
		if err == nil && in != "Z9:007" && got.String() != in {
			t.Errorf("%q reads back as %q", in, got.String())
		}
	}
	for _, in := range []string{
		"", ":", "abc", "abc:", ":12", "ab-c:1", "ab c:1", "é:1", "abc:-1", "abc:+1", "abc:1.0",
		"abc:0x10", "abc:1:2", "abc: 1", "abc:18446744073709551616", strings.Repeat("z", 65) + ":1",
		"abc:%31", "abc:123456789012345678901",
	} {
		if p, err := ParsePosition(in); err == nil {
			t.Errorf("ParsePosition(%q) = %v, want an error", in, p)
		}
	}
}

func TestNewEpochIsLettersAndDigitsAndNeverRepeats(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		e := NewEpoch()
		if _, err := ParsePosition(e + ":1"); err != nil || len(e) != epochLength {
			t.Fatalf("epoch %q: %v", e, err)
		}
		if seen[e] {
			t.Fatalf("epoch %q twice", e)
		}
		seen[e] = true
	}
}

// numbered returns a stream of history epoch, replay 5, with messages 1 to n
// published.
func numbered(n int) *Stream {
	s := NewStream(100, 5)
	s.Begin("ep", 1)
	for i := 1; i <= n; i++ {
		s.Publish(msg(i))
	}
	return s
}

func TestJoinAfterAPositionInHistoryGetsExactlyWhatFollowsIt(t *testing.T) {
	t.Parallel()
	for at := 5; at <= 10; at++ { // 10 published, replay 5: 5 is just before the replay
		s := numbered(10)
		sub, j, ok := s.JoinAfter(&sink{}, &Position{"ep", uint64(at)})
		if !ok || !j.Continues || j.Before != (Position{"ep", uint64(at)}) {
			t.Fatalf("after ep:%d: %+v, %v; want continuing from ep:%d", at, j, ok, at)
		}
		s.Publish(msg(11))
		got := numbers(t, sub.Take(nil, 0))
		assertRun(t, got, at+1, 11)
	}
}

func TestJoinAfterAPositionOutOfHistoryStartsOverWithTheReplay(t *testing.T) {
	t.Parallel()
	for name, at := range map[string]Position{
		"older than the replay": {"ep", 4},
		"another epoch":         {"other", 8},
		"beyond the last":       {"ep", 11},
		"the largest":           {"ep", ^uint64(0)},
	} {
		s := numbered(10)
		sub, j, ok := s.JoinAfter(&sink{}, &at)
		if !ok || j.Continues || j.Before != (Position{"ep", 5}) {
			t.Errorf("%s (%v): %+v, %v; want a reset at ep:5", name, at, j, ok)
			continue
		}
		assertRun(t, numbers(t, sub.Take(nil, 0)), 6, 10)
	}
}

func TestJoinAfterNothingGetsTheReplayAndItsPosition(t *testing.T) {
	t.Parallel()
	s := NewStream(100, 5)
	s.Begin("ep", 1)
	sub, j, _ := s.JoinAfter(&sink{}, nil)
	if !j.Continues || j.Before != (Position{"ep", 0}) {
		t.Fatalf("a new stream: %+v, want joined at ep:0", j)
	}
	if _, j, _ := s.JoinAfter(&sink{}, &Position{"ep", 0}); !j.Continues || j.Before.Seq != 0 {
		t.Fatalf("ep:0 on a new stream: %+v, want joined at ep:0", j)
	}
	s.Publish(msg(1))
	if got := sub.Take(nil, 0); len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("a new stream's first message: %v", got)
	}
	s = numbered(12)
	sub, j, _ = s.JoinAfter(&sink{}, nil)
	if !j.Continues || j.Before != (Position{"ep", 7}) {
		t.Fatalf("12 published, replay 5: %+v, want joined at ep:7", j)
	}
	assertRun(t, numbers(t, sub.Take(nil, 0)), 8, 12)
}

func TestAStreamOnABusNumbersFromWhereTheBusWas(t *testing.T) {
	t.Parallel()
	s := NewStream(100, 3)
	s.Begin("bus", 41) // the bus's replay starts at 41
	for i := 41; i <= 43; i++ {
		m := msg(i)
		m.Seq = uint64(i)
		s.Publish(m)
	}
	s.Publish(msg(44)) // numbered by the stream
	if last := s.Last(); last != (Position{"bus", 44}) {
		t.Fatalf("last = %v, want bus:44", last)
	}
	sub, j, _ := s.JoinAfter(&sink{}, &Position{"bus", 41})
	if !j.Continues {
		t.Fatalf("bus:41 is in the replay: %+v", j)
	}
	for _, m := range sub.Take(nil, 0) {
		if n := numbers(t, []*Message{m})[0]; uint64(n) != m.Seq {
			t.Fatalf("message %d numbered %d", n, m.Seq)
		}
	}
	if s.Reached(Position{"bus", 45}) || !s.Reached(Position{"bus", 44}) || !s.Reached(Position{"x", 99}) {
		t.Fatal("Reached is wrong")
	}
}

func TestATaggedFormIsMadeOnceForEverySubscriber(t *testing.T) {
	t.Parallel()
	m := msg(1)
	var made atomic.Int32
	encode := func(m *Message) *Tagged {
		made.Add(1)
		return &Tagged{Data: append([]byte("id: x\n\n"), m.Data...)}
	}
	var wg sync.WaitGroup
	got := make([]*Tagged, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = m.Tagged(encode)
		}()
	}
	wg.Wait()
	if made.Load() != 1 {
		t.Fatalf("made %d times", made.Load())
	}
	for _, g := range got {
		if g != got[0] {
			t.Fatal("callers got different tagged forms")
		}
	}
}

func TestLocalNumbersWhatItPublishesInANewEpochEachAttach(t *testing.T) {
	t.Parallel()
	var b Local
	l1, a1, _ := b.Attach(context.Background(), "k", newHandler())
	_, a2, _ := b.Attach(context.Background(), "k", newHandler())
	if a1.Epoch == "" || a1.Epoch == a2.Epoch || a1.Seq != 0 {
		t.Fatalf("attachments %+v and %+v: want new epochs, nothing published", a1, a2)
	}
	msgs := []*Message{msg(1), msg(2)}
	end := &Message{Last: true}
	if err := l1.Publish(msgs); err != nil {
		t.Fatal(err)
	}
	if err := l1.Publish([]*Message{msg(3), end}); err != nil {
		t.Fatal(err)
	}
	if msgs[0].Seq != 1 || msgs[1].Seq != 2 || end.Seq != 0 {
		t.Fatalf("numbered %d, %d, end %d", msgs[0].Seq, msgs[1].Seq, end.Seq)
	}
	l1.Close()
}
