package broadcast

import (
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sink records what the stream tells it.
type sink struct {
	mu         sync.Mutex
	wakes      int
	overflowed bool
}

func (s *sink) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wakes++
}

func (s *sink) Overflow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overflowed = true
}

func msg(i int) *Message {
	data := []byte(strconv.Itoa(i))
	return &Message{Data: data, Size: len(data)}
}

// numbers returns what the messages carry, as numbers.
func numbers(t *testing.T, msgs []*Message) []int {
	t.Helper()
	var out []int
	for _, m := range msgs {
		n, err := strconv.Atoi(string(m.Data))
		if err != nil {
			t.Fatalf("message %q", m.Data)
		}
		out = append(out, n)
	}
	return out
}

func assertRun(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from+1 {
		t.Fatalf("got %v, want %d to %d", got, from, to)
	}
	for i, n := range got {
		if n != from+i {
			t.Fatalf("got %v, want %d to %d", got, from, to)
		}
	}
}

func TestEverySubscriberGetsTheSameMessagesInOrderSharedNotCopied(t *testing.T) {
	t.Parallel()
	s := NewStream(100, 0)
	a, _ := s.Join(&sink{}, false)
	b, _ := s.Join(&sink{}, false)
	for i := 1; i <= 10; i++ {
		s.Publish(msg(i))
	}
	ma, mb := a.Take(nil, 0), b.Take(nil, 0)
	assertRun(t, numbers(t, ma), 1, 10)
	assertRun(t, numbers(t, mb), 1, 10)
	for i := range ma {
		if ma[i] != mb[i] {
			t.Fatalf("message %d is two copies: each message must be encoded once and shared", i)
		}
	}
}

func TestSinkIsWokenOnlyWhenItsQueueStopsBeingEmpty(t *testing.T) {
	t.Parallel()
	s := NewStream(100, 0)
	k := &sink{}
	sub, _ := s.Join(k, false)
	s.Publish(msg(1))
	s.Publish(msg(2))
	if k.wakes != 1 {
		t.Fatalf("woken %d times for two messages into an empty queue, want 1", k.wakes)
	}
	sub.Take(nil, 0)
	if got := sub.Take(nil, 0); len(got) != 0 {
		t.Fatalf("second Take = %d messages", len(got))
	}
	s.Publish(msg(3))
	if k.wakes != 2 {
		t.Fatalf("woken %d times, want again once the queue was emptied", k.wakes)
	}
}

func TestFullQueueCutsTheSubscriberOffAfterAGapFreeRun(t *testing.T) {
	t.Parallel()
	s := NewStream(5, 0)
	slow, fast := &sink{}, &sink{}
	slowSub, _ := s.Join(slow, false)
	fastSub, _ := s.Join(fast, false)
	var got []int
	for i := 1; i <= 20; i++ {
		s.Publish(msg(i))
		got = append(got, numbers(t, fastSub.Take(nil, 0))...)
	}
	assertRun(t, got, 1, 20) // the fast one is never held back
	if !slow.overflowed || fast.overflowed {
		t.Fatalf("overflowed: slow %v, fast %v", slow.overflowed, fast.overflowed)
	}
	if rest := slowSub.Take(nil, 0); len(rest) != 0 {
		t.Errorf("a subscriber cut off still holds %d messages", len(rest))
	}
	if _, _, n := s.Stats(); n != 1 {
		t.Errorf("%d subscribed, want the fast one alone", n)
	}
}

func TestReplayGivesTheLastMessagesThenTheLiveOnesWithoutGapOrDuplicate(t *testing.T) {
	t.Parallel()
	s := NewStream(100, 5)
	for i := 1; i <= 12; i++ {
		s.Publish(msg(i))
	}
	k := &sink{}
	sub, _ := s.Join(k, true)
	if k.wakes != 1 {
		t.Errorf("a replay must wake the sink")
	}
	for i := 13; i <= 15; i++ {
		s.Publish(msg(i))
	}
	assertRun(t, numbers(t, sub.Take(nil, 0)), 8, 15)
	plain, _ := s.Join(&sink{}, false)
	if got := plain.Take(nil, 0); len(got) != 0 {
		t.Errorf("a subscriber joining without replay got %d old messages", len(got))
	}
}

func TestReplayComesOnTopOfTheQueue(t *testing.T) {
	t.Parallel()
	s := NewStream(3, 10)
	for i := 1; i <= 12; i++ {
		s.Publish(msg(i))
	}
	k := &sink{}
	sub, _ := s.Join(k, true)
	for i := 13; i <= 15; i++ {
		s.Publish(msg(i))
	}
	if k.overflowed {
		t.Fatal("a newcomer overflowed on its replay and a queue's worth")
	}
	assertRun(t, numbers(t, sub.Take(nil, 0)), 3, 15)
	k2 := &sink{}
	s.Join(k2, true)
	for i := 16; i <= 19; i++ {
		s.Publish(msg(i))
	}
	if !k2.overflowed {
		t.Error("a newcomer that took nothing did not overflow past its replay and queue")
	}
}

func TestEndFollowsWhatIsQueuedAndEndsTheStream(t *testing.T) {
	t.Parallel()
	s := NewStream(2, 0)
	sub, _ := s.Join(&sink{}, false)
	s.Publish(msg(1))
	s.Publish(msg(2))
	s.End(&Message{Last: true}) // however full the queue
	s.Publish(msg(3))
	got := sub.Take(nil, 0)
	if len(got) != 3 || !got[2].Last {
		t.Fatalf("got %d messages (last %v), want both then the end", len(got), got[len(got)-1].Last)
	}
	if _, ok := s.Join(&sink{}, false); ok {
		t.Error("joined an ended stream")
	}
}

func TestLeaveDropsTheQueueAndCountsWhoRemains(t *testing.T) {
	t.Parallel()
	s := NewStream(10, 0)
	subs := make([]*Subscriber, 3)
	for i := range subs {
		subs[i], _ = s.Join(&sink{}, false)
	}
	s.Publish(msg(1))
	if n := s.Leave(subs[0]); n != 2 {
		t.Errorf("%d remain, want 2", n)
	}
	if n := s.Leave(subs[0]); n != 2 {
		t.Errorf("leaving twice: %d remain, want 2", n)
	}
	s.Publish(msg(2))
	if got := subs[0].Take(nil, 0); len(got) != 0 {
		t.Errorf("a subscriber that left got %d messages", len(got))
	}
	assertRun(t, numbers(t, subs[2].Take(nil, 0)), 1, 2)
	published, joined, subscribed := s.Stats()
	if published != 2 || joined != 3 || subscribed != 2 {
		t.Errorf("stats = %d published, %d joined, %d subscribed", published, joined, subscribed)
	}
}

func TestConcurrentPublishAndTakeKeepEachSubscribersOrder(t *testing.T) {
	t.Parallel()
	const n = 2000
	s := NewStream(n, 0)
	var wg sync.WaitGroup
	for range 4 {
		sub, _ := s.Join(&sink{}, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []int
			for len(got) == 0 || got[len(got)-1] != n {
				got = append(got, numbers(t, sub.Take(nil, 0))...)
			}
			for i := 1; i < len(got); i++ {
				if got[i] != got[i-1]+1 {
					t.Errorf("gap or reorder: %d after %d", got[i], got[i-1])
					return
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		s.Publish(msg(i))
	}
	wg.Wait()
}

func TestTakeTakesAsMuchAsAskedOldestFirst(t *testing.T) {
	t.Parallel()
	s := NewStream(100, 0)
	sub, _ := s.Join(&sink{}, false)
	for i := 10; i < 20; i++ { // two bytes each
		s.Publish(msg(i))
	}
	assertRun(t, numbers(t, sub.Take(nil, 5)), 10, 12) // 6 bytes: at least 5
	assertRun(t, numbers(t, sub.Take(nil, 1)), 13, 13)
	assertRun(t, numbers(t, sub.Take(nil, 0)), 14, 19)
	if got := sub.Take(nil, 0); len(got) != 0 {
		t.Errorf("an empty queue gave %d messages", len(got))
	}
}
