package broadcast

import (
	"strconv"
	"sync"
	"testing"
	"time"

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

func (s *sink) woken() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wakes
}

func (s *sink) cutOff() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overflowed
}

// takingSink takes its messages when woken, as the gateway's members do.
type takingSink struct {
	mu  sync.Mutex
	sub *Subscriber
	got []*Message
}

func (s *takingSink) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, s.sub.Take(nil, 0)...)
}

func (s *takingSink) Overflow() {}

func (s *takingSink) messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
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

func TestWorkersWakeEachSubscriberWithMessagesWaitingAndNoOther(t *testing.T) {
	t.Parallel()
	s := NewStream(100, 0)
	sinks := make([]*sink, 5)
	subs := make([]*Subscriber, len(sinks))
	for i := range sinks {
		sinks[i] = &sink{}
		subs[i], _ = s.Join(sinks[i], false)
	}
	s.Publish(msg(1))
	s.Wait()
	for i, k := range sinks {
		if k.woken() == 0 {
			t.Fatalf("subscriber %d was not woken for a message", i)
		}
		subs[i].Take(nil, 0)
	}
	s.Leave(subs[0])
	before := sinks[0].woken()
	s.Publish(msg(2))
	subs[1].Take(nil, 0) // taken before the workers come by, maybe
	s.Wait()
	if sinks[0].woken() != before {
		t.Error("a subscriber that left was woken")
	}
	for i := 2; i < len(sinks); i++ {
		if sinks[i].woken() < 2 {
			t.Errorf("subscriber %d woken %d times for two messages apart", i, sinks[i].woken())
		}
	}
}

func TestDeliveryThroughWakeGivesEverySubscriberEverythingInOrder(t *testing.T) {
	t.Parallel()
	const n = 3000
	s := NewStream(n, 0)
	sinks := make([]*takingSink, 50)
	for i := range sinks {
		sinks[i] = &takingSink{}
		sinks[i].mu.Lock() // Join may wake it before sub is set
		sinks[i].sub, _ = s.Join(sinks[i], false)
		sinks[i].mu.Unlock()
	}
	for i := 1; i <= n; i++ {
		s.Publish(msg(i))
	}
	s.End(&Message{Last: true})
	s.Wait()
	for i, k := range sinks {
		got := k.messages()
		if len(got) != n+1 || !got[n].Last {
			t.Fatalf("subscriber %d got %d messages, want %d and the end", i, len(got), n+1)
		}
		assertRun(t, numbers(t, got[:n]), 1, n)
	}
}

func TestTheRingLetsGoOfWhatEverySubscriberTookButTheReplay(t *testing.T) {
	t.Parallel()
	s := NewStream(1000, 3)
	a, b := &takingSink{}, &takingSink{}
	for _, k := range []*takingSink{a, b} {
		k.mu.Lock()
		k.sub, _ = s.Join(k, false)
		k.mu.Unlock()
	}
	for i := 1; i <= 500; i++ {
		s.Publish(msg(i))
	}
	s.Wait()
	s.mu.Lock()
	held := s.head.Load() - s.tail
	s.mu.Unlock()
	if held != 3 {
		t.Errorf("the ring holds %d messages once all were taken, want the replay of 3", held)
	}
	s.Leave(a.sub)
	s.Leave(b.sub)
	for i := 501; i <= 600; i++ {
		s.Publish(msg(i))
	}
	s.mu.Lock()
	held, size := s.head.Load()-s.tail, len(s.ring)
	s.mu.Unlock()
	if held != 3 || size > minRing {
		t.Errorf("with no subscriber the ring holds %d messages in %d places, want the replay of 3", held, size)
	}
}

func TestAFarBehindSubscriberIsCutOffByItsOwnTake(t *testing.T) {
	t.Parallel()
	s := NewStream(4, 0)
	k := &sink{}
	sub, _ := s.Join(k, false)
	s.Wait()
	s.mu.Lock() // no worker passes meanwhile: Take alone must tell
	for i := 1; i <= 100; i++ {
		s.push(msg(i))
		s.dataHead.Store(s.head.Load())
	}
	s.mu.Unlock()
	if got := sub.Take(nil, 0); len(got) != 0 || !k.cutOff() {
		t.Errorf("Take gave %d messages (cut off: %v) to a subscriber 100 behind with a queue of 4", len(got), k.cutOff())
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
	s.Wait()
	assertRun(t, got, 1, 20) // the fast one is never held back
	if !slow.cutOff() || fast.cutOff() {
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
	s.Wait()
	if k.woken() == 0 {
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
	s.Wait()
	if k.cutOff() {
		t.Fatal("a newcomer overflowed on its replay and a queue's worth")
	}
	assertRun(t, numbers(t, sub.Take(nil, 0)), 3, 15)
	k2 := &sink{}
	s.Join(k2, true)
	for i := 16; i <= 19; i++ {
		s.Publish(msg(i))
	}
	s.Wait()
	if !k2.cutOff() {
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

func TestSubscribersJoiningWhileWorkersPassLoseNothing(t *testing.T) {
	t.Parallel()
	const n = 20000
	s := NewStream(n, 0)
	sinks := make([]*takingSink, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			s.Publish(msg(i))
		}
		s.End(&Message{Last: true})
	}()
	for i := range sinks {
		k := &takingSink{}
		k.mu.Lock()
		k.sub, _ = s.Join(k, false)
		k.mu.Unlock()
		sinks[i] = k
		if i%10 == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	<-done
	s.Wait()
	for i, k := range sinks {
		if k.sub == nil {
			continue // joined after the end
		}
		got := k.messages()
		if len(got) == 0 {
			continue // joined just before the end: nothing but it could come
		}
		if !got[len(got)-1].Last {
			t.Fatalf("subscriber %d did not get the end (cut off?) after %d messages", i, len(got))
		}
		if nums := numbers(t, got[:len(got)-1]); len(nums) > 0 {
			assertRun(t, nums, nums[0], n)
		}
	}
}

func TestTakeIntoABufferWithRoomTakesWhatFitsAllocatesNothingAndLosesNothing(t *testing.T) {
	// Not parallel: AllocsPerRun counts every goroutine's allocations.
	s := NewStream(1000, 0)
	sub, _ := s.Join(&sink{}, false)
	for i := 1; i <= 100; i++ {
		s.Publish(msg(i))
	}
	s.Wait()
	var scratch [8]*Message
	var got []int
	for range 13 { // 12 takes of 8 and the last 4
		taken := sub.Take(scratch[:0], 0)
		if len(taken) > len(scratch) || (len(taken) > 0 && &taken[0] != &scratch[0]) {
			t.Fatalf("Take returned %d messages outside the buffer given, of %d", len(taken), len(scratch))
		}
		got = append(got, numbers(t, taken)...)
	}
	assertRun(t, got, 1, 100)
	if rest := sub.Take(nil, 0); len(rest) != 0 {
		t.Fatalf("%d messages left after taking all", len(rest))
	}

	for i := 1; i <= 900; i++ { // AllocsPerRun takes 101 times
		s.Publish(msg(i))
	}
	s.Wait()
	allocs := testing.AllocsPerRun(100, func() {
		if taken := sub.Take(scratch[:0], 0); len(taken) != len(scratch) {
			t.Fatalf("took %d of %d", len(taken), len(scratch))
		}
	})
	if allocs != 0 {
		t.Errorf("Take into a buffer with room allocated %.1f times a call", allocs)
	}
}

// heldSink takes one message each time it is woken; its first Wake waits,
// holding the worker that called it, until released.
type heldSink struct {
	sub     *Subscriber
	waking  chan struct{} // closed as the first Wake begins to wait
	release chan struct{}
	first   sync.Once

	mu  sync.Mutex
	got []*Message
}

func (s *heldSink) Wake() {
	s.first.Do(func() {
		close(s.waking)
		<-s.release
	})
	taken := s.sub.Take(make([]*Message, 0, 1), 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, taken...)
}

func (s *heldSink) Overflow() {}

// leavingSink takes what waits and leaves the stream once it has the end,
// as a member whose client is closed does.
type leavingSink struct {
	sub  *Subscriber
	took chan struct{} // told after a Wake
	left chan struct{} // closed once it has left
}

func (s *leavingSink) Wake() {
	for _, m := range s.sub.Take(nil, 0) {
		if m.Last {
			s.sub.stream.Leave(s.sub)
			close(s.left)
		}
	}
	select {
	case s.took <- struct{}{}:
	default:
	}
}

func (s *leavingSink) Overflow() {}

func TestASubscriberMovedToAnotherWorkerByALeaveStillGetsTheEnd(t *testing.T) {
	t.Parallel()
	s := NewStream(10, 0)
	s.workers = make([]worker, 2) // a at 0 is worker 0's, b at 1 worker 1's
	a := &leavingSink{took: make(chan struct{}, 1), left: make(chan struct{})}
	b := &heldSink{waking: make(chan struct{}), release: make(chan struct{})}
	a.sub, _ = s.Join(a, false)
	b.sub, _ = s.Join(b, false)
	s.Publish(msg(1))
	<-a.took
	<-b.waking // worker 1 is held in b's Wake
	s.End(&Message{Last: true})
	<-a.left // worker 0 passed: a took the end and left, and b is at 0 now
	close(b.release)
	s.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) != 2 || !b.got[1].Last {
		t.Fatalf("b got %d messages and no end: moved into a's place after worker 0 passed, it was never woken again", len(b.got))
	}
}
