package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/internal/testrun"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a Handler that records what it is told. Input blocks while
// hold is set.
type recorder struct {
	mu       sync.Mutex
	leads    int
	msgs     []*broadcast.Message
	inputs   []string
	audience []int
	failed   error
	hold     chan struct{} // while non-nil, Input waits for it to close
}

func (r *recorder) Lead() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leads++
}

func (r *recorder) Deliver(m *broadcast.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) Input(p []byte) {
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs = append(r.inputs, string(p))
}

func (r *recorder) Audience(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.audience = append(r.audience, n)
}

func (r *recorder) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed == nil {
		r.failed = err
	}
}

func (r *recorder) leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leads > 0
}

func (r *recorder) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) delivered() []*broadcast.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*broadcast.Message(nil), r.msgs...)
}

func (r *recorder) lastAudience() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.audience) == 0 {
		return -1
	}
	return r.audience[len(r.audience)-1]
}

// party is one instance's bus and its link to the test's stream.
type party struct {
	bus      *Bus
	link     broadcast.Link
	rec      *recorder
	logs     *testrun.Buffer
	ledFirst bool // took the lead as it attached
}

// leads reports whether the party leads: from its attachment, or since.
func (p *party) leads() bool { return p.ledFirst || p.rec.leading() }

// newBus returns a bus on url, closed at the end of the test, logging into
// a buffer.
func newBus(t *testing.T, url string, replay int) (*Bus, *testrun.Buffer) {
	t.Helper()
	logged := &testrun.Buffer{}
	logger, err := logs.New(logged, "text", logs.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{URL: url, Replay: replay, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil && !errors.Is(err, redis.ErrClosed) { // ErrClosed: crashed
			t.Errorf("close bus: %v", err)
		}
		if t.Failed() {
			t.Logf("bus %s log:\n%s", b.ID(), logged.String())
		}
	})
	return b, logged
}

// attach makes a new instance (a bus of its own) a party to key, started,
// and returns it and its replay.
func attach(t *testing.T, url, key string, replay int) (*party, []*broadcast.Message) {
	t.Helper()
	p, at := attachWith(t, url, key, replay)
	return p, at.Replay
}

// attachWith is attach, returning the whole attachment.
func attachWith(t *testing.T, url, key string, replay int) (*party, broadcast.Attachment) {
	t.Helper()
	b, logged := newBus(t, url, replay)
	p := &party{bus: b, rec: &recorder{}, logs: logged}
	link, at, err := b.Attach(context.Background(), key, p.rec)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	p.link, p.ledFirst = link, at.Lead
	link.Start()
	return p, at
}

// testrunRedis starts a Redis for the test and returns its URL.
func testrunRedis(t *testing.T) string { return testrun.StartRedis(t).URL() }

// waitFor polls cond every 10 ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaderOf waits until exactly one party leads, and returns it.
func leaderOf(t *testing.T, parties ...*party) *party {
	t.Helper()
	var leader *party
	waitFor(t, 2*leaseTTL, "one party leads", func() bool {
		leader = nil
		for _, p := range parties {
			if p.leads() {
				if leader != nil {
					t.Fatalf("two parties lead")
				}
				leader = p
			}
		}
		return leader != nil
	})
	return leader
}

// leaderAndOther waits until one of a and b leads, and returns it and the
// other.
func leaderAndOther(t *testing.T, a, b *party) (*party, *party) {
	t.Helper()
	if leader := leaderOf(t, a, b); leader == b {
		return b, a
	}
	return a, b
}

// numbered returns messages "from" to "to", as a leader would publish them.
func numbered(from, to int) []*broadcast.Message {
	var msgs []*broadcast.Message
	for i := from; i <= to; i++ {
		data := []byte(strconv.Itoa(i))
		msgs = append(msgs, &broadcast.Message{Data: data, Size: len(data)})
	}
	return msgs
}

// numbers returns the messages' data as numbers, failing on any other.
func numbers(t *testing.T, msgs []*broadcast.Message) []int {
	t.Helper()
	out := make([]int, 0, len(msgs))
	for _, m := range msgs {
		n, err := strconv.Atoi(strings.TrimRight(string(m.Data), "x")) // padding
		if err != nil {
			t.Fatalf("message %q is not a number", m.Data)
		}
		out = append(out, n)
	}
	return out
}

// assertRun checks that ns are from, from+1, ... to.
func assertRun(t *testing.T, what string, ns []int, from, to int) {
	t.Helper()
	if len(ns) != to-from+1 {
		t.Fatalf("%s: %d messages, want %d (%d to %d); got %s", what, len(ns), to-from+1, from, to, short(ns))
	}
	for i, n := range ns {
		if n != from+i {
			t.Fatalf("%s: message %d is %d, want %d: a gap or a duplicate; got %s", what, i, n, from+i, short(ns))
		}
	}
}

func short(ns []int) string {
	if len(ns) > 20 {
		return fmt.Sprint(ns[:10], "...", ns[len(ns)-10:])
	}
	return fmt.Sprint(ns)
}

// rawClient is a plain go-redis client for the test to look at or tamper
// with the bus's keys.
func rawClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.Protocol = 2
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// crash cuts a party's connections to Redis, as if its instance died: it
// neither renews nor releases anything.
func crash(p *party) { p.bus.rdb.Close() }
