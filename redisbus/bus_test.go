package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/testrun"
)

func TestOneOfThreeInstancesLeadsAndTheOthersGetEveryMessageInOrder(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	var parties []*party
	for range 3 {
		p, _ := attach(t, url, "/feed?a", 0)
		parties = append(parties, p)
	}
	leader := leaderOf(t, parties...)
	for _, batch := range [][2]int{{1, 1}, {2, 500}, {501, 2500}} {
		if err := leader.link.Publish(numbered(batch[0], batch[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range parties {
		if p == leader {
			continue
		}
		waitFor(t, 5*time.Second, "every message delivered", func() bool { return len(p.rec.delivered()) >= 2500 })
		assertRun(t, "relay", numbers(t, p.rec.delivered()), 1, 2500)
	}
	time.Sleep(2 * tickInterval) // the lease is renewed, never taken over
	for _, p := range parties {
		if p != leader && p.leads() {
			t.Fatal("a second party leads while the first renews its lease")
		}
		if err := p.rec.failure(); err != nil {
			t.Fatalf("a link failed: %v", err)
		}
	}
	if got := leader.rec.delivered(); len(got) != 0 {
		t.Errorf("the leader was delivered %d of its own messages", len(got))
	}
}

func TestAnInstanceThatAttachesMidStreamGetsTheReplayThenLiveWithNoGapOrDuplicate(t *testing.T) {
	t.Parallel()
	const replay, total = 50, 3000
	url := testrun.StartRedis(t).URL()
	first, _ := attach(t, url, "/ticker", replay)
	leader := leaderOf(t, first)
	published := make(chan int, total)
	go func() { // the leader's feeder: one message at a time, as lines come
		defer close(published)
		for i := 1; i <= total; i++ {
			if err := leader.link.Publish(numbered(i, i)); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			published <- i
		}
	}()
	var joiners []*party
	var replays [][]*broadcast.Message
	for n := range published {
		if n%400 == 0 { // attach while the stream runs
			p, msgs := attach(t, url, "/ticker", replay)
			joiners, replays = append(joiners, p), append(replays, msgs)
		}
	}
	for i, p := range joiners {
		waitFor(t, 5*time.Second, "every message", func() bool {
			d := append(replays[i], p.rec.delivered()...)
			return string(d[len(d)-1].Data) == fmt.Sprint(total)
		})
		got := numbers(t, append(replays[i], p.rec.delivered()...))
		if len(replays[i]) != replay {
			t.Errorf("joiner %d got a replay of %d, want %d", i, len(replays[i]), replay)
		}
		assertRun(t, fmt.Sprintf("joiner %d: replay then live", i), got, got[0], total)
	}
	keys := keysFor("/ticker")
	if n := rawClient(t, url).LLen(context.Background(), keys.replay).Val(); n != replay {
		t.Errorf("Redis keeps %d messages for replay, want %d", n, replay)
	}
}

func TestInputFromEveryInstanceReachesTheLeaderWholeInEachSendersOrder(t *testing.T) {
	t.Parallel()
	const perSender = 200
	url := testrun.StartRedis(t).URL()
	var parties []*party
	for range 3 {
		p, _ := attach(t, url, "/chat", 0)
		parties = append(parties, p)
	}
	leader := leaderOf(t, parties...)
	var wg sync.WaitGroup
	for i, p := range parties {
		if p == leader {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perSender {
				msg := fmt.Sprintf("%d %d %s", i, j, strings.Repeat("x", 10000+j))
				if err := p.link.Send(context.Background(), []byte(msg)); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, 5*time.Second, "every input", func() bool {
		leader.rec.mu.Lock()
		defer leader.rec.mu.Unlock()
		return len(leader.rec.inputs) >= 2*perSender
	})
	next := map[string]int{}
	for _, in := range leader.rec.inputs {
		fields := strings.SplitN(in, " ", 3)
		var j int
		fmt.Sscan(fields[1], &j)
		if len(fields) != 3 || fields[2] != strings.Repeat("x", 10000+j) {
			t.Fatalf("input not whole: %.40q", in)
		}
		if j != next[fields[0]] {
			t.Fatalf("sender %s: input %d after %d", fields[0], j, next[fields[0]]-1)
		}
		next[fields[0]]++
	}
}

func TestTheLastMessageEndsTheStreamEverywhereAndFreesTheLease(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/count", 10)
	b, _ := attach(t, url, "/count", 10)
	leader, relay := leaderAndOther(t, a, b)
	end := &broadcast.Message{Data: []byte("bye"), Last: true}
	if err := leader.link.Publish(append(numbered(1, 3), end)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the end delivered", func() bool { return len(relay.rec.delivered()) == 4 })
	if got := relay.rec.delivered()[3]; !got.Last || string(got.Data) != "bye" {
		t.Fatalf("last message %+v, want the end", got)
	}
	if err := leader.link.Publish(numbered(4, 4)); err == nil {
		t.Error("published after the end")
	}
	time.Sleep(2 * tickInterval)
	if relay.leads() {
		t.Error("the relay took the lead of a stream that ended")
	}
	relay.link.Close()
	leader.link.Close()

	// The next party starts a new stream: no replay of the old one, and it
	// leads.
	c, replay := attach(t, url, "/count", 10)
	if len(replay) != 0 {
		t.Errorf("a new stream replays %d messages of the one that ended", len(replay))
	}
	if !c.ledFirst {
		t.Error("the first party of a new stream does not lead at once")
	}
}

func TestALeaderThatStopsRenewingIsReplacedWithinTheLeaseTime(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/feed", 5)
	b, _ := attach(t, url, "/feed", 5)
	leader, other := leaderAndOther(t, a, b)
	if err := leader.link.Publish(numbered(1, 10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "delivered", func() bool { return len(other.rec.delivered()) == 10 })

	// A crash: the leader's connections go, and it neither renews nor
	// releases its lease.
	crashed := time.Now()
	crash(leader)
	waitFor(t, leaseTTL+3*tickInterval, "the other instance leads", other.rec.leading)
	took := time.Since(crashed)
	t.Logf("lead taken over %v after the leader's crash", took.Round(time.Millisecond))
	if took < leaseTTL/2 {
		t.Errorf("lead taken over after %v, before the lease could expire", took)
	}
	// The new leader continues the numbering: a relay that joins gets the
	// replay and then its messages, with no gap.
	if err := other.link.Publish(numbered(11, 20)); err != nil {
		t.Fatal(err)
	}
	c, replay := attach(t, url, "/feed", 5)
	if err := other.link.Publish(numbered(21, 25)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "delivered", func() bool { return len(c.rec.delivered()) == 5 })
	assertRun(t, "replay then live", numbers(t, append(replay, c.rec.delivered()...)), 16, 25)
	if err := leader.rec.failure(); err == nil {
		t.Error("the crashed leader's link did not fail")
	}
}

func TestALeaderThatLeavesHandsTheLeadOverAtOnce(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/feed", 0)
	b, _ := attach(t, url, "/feed", 0)
	leader, other := leaderAndOther(t, a, b)
	left := time.Now()
	leader.link.Close()
	waitFor(t, 3*tickInterval, "the other instance leads", other.rec.leading)
	t.Logf("lead handed over in %v", time.Since(left).Round(time.Millisecond))
}

func TestTheLeaderHearsHowManyInstancesHaveSubscribers(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	var parties []*party
	for range 3 {
		p, _ := attach(t, url, "/room", 0)
		parties = append(parties, p)
	}
	leader := leaderOf(t, parties...)
	waitFor(t, 3*tickInterval, "audience 3", func() bool { return leader.rec.lastAudience() == 3 })
	for _, p := range parties {
		if p != leader {
			p.link.Close()
		}
	}
	waitFor(t, 3*tickInterval, "audience 1", func() bool { return leader.rec.lastAudience() == 1 })
	leader.link.SetPresent(false)
	waitFor(t, 3*tickInterval, "audience 0", func() bool { return leader.rec.lastAudience() == 0 })
	p, _ := attach(t, url, "/room", 0)
	waitFor(t, 3*tickInterval, "audience 1 again", func() bool { return leader.rec.lastAudience() == 1 })
	if p.leads() {
		t.Error("a newcomer leads while the leader renews")
	}
}

func TestACrashedInstanceStopsCountingAfterThePresenceTime(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/room", 0)
	leader := leaderOf(t, a)
	b, _ := attach(t, url, "/room", 0)
	waitFor(t, 3*tickInterval, "audience 2", func() bool { return leader.rec.lastAudience() == 2 })
	leader.link.SetPresent(false)
	crash(b) // its presence is not taken back
	waitFor(t, presenceTTL+3*tickInterval, "audience 0", func() bool { return leader.rec.lastAudience() == 0 })
}

func TestALeaderWhoseLeaseWasTakenCannotPublish(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/feed", 0)
	b, _ := attach(t, url, "/feed", 0)
	leader, other := leaderAndOther(t, a, b)
	rdb := rawClient(t, url)
	rdb.Set(context.Background(), keysFor("/feed").lease, "someone else", leaseTTL)
	// The publish finds the lease gone, or the tick found it first.
	if err := leader.link.Publish(numbered(1, 1)); err == nil {
		t.Fatal("published without the lease")
	}
	if !errors.Is(leader.rec.failure(), ErrLeaseLost) {
		t.Errorf("the leader's link did not fail with ErrLeaseLost: %v", leader.rec.failure())
	}
	time.Sleep(2 * tickInterval)
	if n := len(other.rec.delivered()); n != 0 {
		t.Errorf("%d messages delivered from a leader without the lease", n)
	}
}

func TestAGapFailsTheLinkRatherThanSkipping(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	rdb := rawClient(t, url)
	rdb.Set(context.Background(), keysFor("/feed").lease, "another instance", time.Minute)
	b, _ := attach(t, url, "/feed", 0)
	payload := appendEntry(nil, 1, numbered(1, 1)[0])
	payload = appendEntry(payload, 3, numbered(3, 3)[0])
	rdb.Publish(context.Background(), keysFor("/feed").out, payload)
	waitFor(t, 2*time.Second, "the link fails", func() bool { return b.rec.failure() != nil })
	if !errors.Is(b.rec.failure(), errGap) {
		t.Errorf("failed with %v, want a gap", b.rec.failure())
	}
	assertRun(t, "before the gap", numbers(t, b.rec.delivered()), 1, 1)
}

func TestRedisLostFailsEveryLinkAndTheBusComesBackByItself(t *testing.T) {
	t.Parallel()
	srv := testrun.StartRedis(t)
	url := srv.URL()
	a, _ := attach(t, url, "/feed", 0)
	b, _ := attach(t, url, "/feed", 0)
	leaderOf(t, a, b)
	srv.Kill()
	for _, p := range []*party{a, b} {
		waitFor(t, leaseTTL, "the link fails", func() bool { return p.rec.failure() != nil })
	}
	start := time.Now()
	if _, _, err := a.bus.Attach(context.Background(), "/feed", &recorder{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("attach while Redis is down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("attach while Redis is down took %v, want an answer at once", d)
	}
	srv.Start()
	waitFor(t, 2*probeBackoffMax, "the bus is back", func() bool { return !a.bus.down.Load() })
	link, _, err := a.bus.Attach(context.Background(), "/feed", &recorder{})
	if err != nil {
		t.Fatalf("attach after Redis came back: %v", err)
	}
	link.Start()
	if !strings.Contains(a.logs.String(), "bus reachable again") {
		t.Errorf("no log line says the bus is back:\n%s", a.logs.String())
	}
}

func TestARelayThatFallsBehindIsCutOffByRedisAndTheOthersAreNotHeldBack(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t, "--client-output-buffer-limit", "pubsub 4mb 2mb 2").URL()
	a, _ := attach(t, url, "/flood", 0)
	leader := leaderOf(t, a)
	fast, _ := attach(t, url, "/flood", 0)
	slow := &recorder{}
	slowBus, _ := newBus(t, url, 0)
	h := &slowHandler{recorder: slow}
	h.slow.Store(true)
	slowLink, _, err := slowBus.Attach(context.Background(), "/flood", h)
	if err != nil {
		t.Fatal(err)
	}
	slowLink.Start()

	const total = 20000 // of 1 kB: more than the socket buffers and Redis's limit hold
	padding := strings.Repeat("x", 1000)
	for i := 1; i <= total; i += 100 {
		msgs := numbered(i, i+99)
		for _, m := range msgs {
			m.Data = append(m.Data, padding...)
		}
		if err := leader.link.Publish(msgs); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the fast relay got everything", func() bool {
		if err := fast.rec.failure(); err != nil {
			t.Fatalf("the fast relay's link failed: %v", err)
		}
		return len(fast.rec.delivered()) == total
	})
	h.slow.Store(false) // let it find out
	waitFor(t, 20*time.Second, "the slow relay's link fails", func() bool { return slow.failure() != nil })
	got := numbers(t, slow.delivered())
	t.Logf("the slow relay got %d messages, then failed with: %v", len(got), slow.failure())
	if len(got) >= total {
		t.Fatalf("the slow relay got all %d messages: Redis's limit was not reached", total)
	}
	if err := slow.failure(); !strings.Contains(err.Error(), "client-output-buffer-limit") || strings.Contains(err.Error(), "parse") {
		t.Errorf("the slow relay's failure is not told in Redis's terms: %v", err)
	}
	if n := slowBus.ErrorCounts()[KindCutOff]; n != 1 {
		t.Errorf("%d cut_off errors counted, want 1", n)
	}
	if len(got) > 0 {
		assertRun(t, "the slow relay, before it was cut off", got, 1, len(got))
	}
}

// slowHandler is a recorder that takes 5 ms for each message while slow is
// set, as an instance short of CPU would.
type slowHandler struct {
	*recorder
	slow atomic.Bool
}

func (h *slowHandler) Deliver(m *broadcast.Message) {
	if h.slow.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	h.recorder.Deliver(m)
}

func TestInputWaitsWhileTheLeadersQueueIsFullAndNoneIsLost(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/chat", 0)
	leader := leaderOf(t, a)
	b, _ := attach(t, url, "/chat", 0)
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before the buses close, even if the test fails
	leader.rec.mu.Lock()
	leader.rec.hold = hold // the process reads nothing
	leader.rec.mu.Unlock()
	// Sends are taken until the queue is full: then they wait.
	sent := 0
	for ; sent < 2*maxInputs; sent++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.link.Send(ctx, []byte(fmt.Sprint(sent)))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// One taken by the leader, under way; takeInputs-1 taken with it.
	if sent < maxInputs || sent > maxInputs+takeInputs {
		t.Fatalf("%d inputs taken before Send waited, want the queue's %d and the leader's %d at most", sent, maxInputs, takeInputs)
	}
	rdb := rawClient(t, url)
	if n := rdb.LLen(context.Background(), keysFor("/chat").input).Val(); n != maxInputs {
		t.Errorf("%d inputs queued in Redis, want %d", n, maxInputs)
	}
	release()
	if err := b.link.Send(context.Background(), []byte(fmt.Sprint(sent))); err != nil {
		t.Fatal(err)
	}
	sent++
	waitFor(t, 10*time.Second, "every input taken", func() bool {
		leader.rec.mu.Lock()
		defer leader.rec.mu.Unlock()
		return len(leader.rec.inputs) == sent
	})
	for i, in := range leader.rec.inputs {
		if in != fmt.Sprint(i) {
			t.Fatalf("input %d is %q", i, in)
		}
	}
	if n := rdb.Exists(context.Background(), keysFor("/chat").inbytes).Val(); n != 0 {
		t.Errorf("the queue's byte count is left after it emptied")
	}
}

func TestInputSentWhileNoInstanceLeadsReachesTheNextLeader(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/chat", 0)
	leader := leaderOf(t, a)
	b, _ := attach(t, url, "/chat", 0)
	crash(leader)
	if err := b.link.Send(context.Background(), []byte("while nobody leads")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, leaseTTL+3*tickInterval, "b leads", b.rec.leading)
	waitFor(t, 2*time.Second, "the input", func() bool {
		b.rec.mu.Lock()
		defer b.rec.mu.Unlock()
		return len(b.rec.inputs) == 1
	})
}

func TestTheFirstInstanceLeadsAsItAttachesSoInputSentAtOnceReachesIt(t *testing.T) {
	t.Parallel()
	url := testrun.StartRedis(t).URL()
	a, _ := attach(t, url, "/greeter", 0)
	if !a.ledFirst {
		t.Fatal("the first instance does not lead as it attaches")
	}
	b, _ := attach(t, url, "/greeter", 0)
	if b.ledFirst {
		t.Fatal("the second instance leads too")
	}
	if err := b.link.Send(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the input", func() bool {
		a.rec.mu.Lock()
		defer a.rec.mu.Unlock()
		return len(a.rec.inputs) == 1 && a.rec.inputs[0] == "hello"
	})
}
