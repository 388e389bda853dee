package broadcast

import (
	"context"
	"sync"
	"testing"
	"time"
)

// handler records what a link tells it. Its lock is also the one its
// owner holds while calling the link, as the gateway holds its registry's:
// a link that called the handler from within would deadlock.
type handler struct {
	mu       sync.Mutex
	audience []int
	inputs   []string
	told     chan struct{} // gets a value after each call, if none waits
}

func newHandler() *handler { return &handler{told: make(chan struct{}, 1)} }

func (h *handler) record(f func()) {
	h.mu.Lock()
	f()
	h.mu.Unlock()
	select {
	case h.told <- struct{}{}:
	default:
	}
}

func (h *handler) Lead()            { h.record(func() { h.inputs = append(h.inputs, "lead") }) }
func (h *handler) Deliver(*Message) { h.record(func() { h.inputs = append(h.inputs, "deliver") }) }
func (h *handler) Fail(error)       { h.record(func() { h.inputs = append(h.inputs, "fail") }) }
func (h *handler) Input(p []byte)   { h.record(func() { h.inputs = append(h.inputs, string(p)) }) }
func (h *handler) Audience(n int)   { h.record(func() { h.audience = append(h.audience, n) }) }

// waitAudience waits until the handler has been told want, in that order,
// and fails if it is told more or something else.
func (h *handler) waitAudience(t *testing.T, want ...int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		got := append([]int(nil), h.audience...)
		h.mu.Unlock()
		if len(got) >= len(want) {
			for i := range got {
				if i >= len(want) || got[i] != want[i] {
					t.Fatalf("audience told %v, want %v", got, want)
				}
			}
			return
		}
		select {
		case <-h.told:
		case <-deadline:
			t.Fatalf("audience told %v within 5 s, want %v", got, want)
		}
	}
}

// settled waits until no teller runs, so that what is recorded is all the
// handler will be told.
func settled(t *testing.T, link Link) {
	t.Helper()
	l := link.(*localLink)
	for deadline := time.Now().Add(5 * time.Second); ; {
		l.mu.Lock()
		telling := l.telling
		l.mu.Unlock()
		if !telling {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the audience is still being told after 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLocalBusLeadsEveryStreamAtOnceWithNothingToReplay(t *testing.T) {
	t.Parallel()
	h := newHandler()
	link, at, err := Local{}.Attach(context.Background(), "/feed?x=1", h)
	if err != nil || !at.Lead || len(at.Replay) != 0 {
		t.Fatalf("Attach = %+v, %v; want the lead at once and no replay", at, err)
	}
	defer link.Close()
	link.Start()
	if err := link.Publish([]*Message{msg(1), {Last: true}}); err != nil {
		t.Errorf("Publish with no other party: %v", err)
	}
	other, at2, _ := Local{}.Attach(context.Background(), "/feed?x=1", newHandler())
	defer other.Close()
	if !at2.Lead {
		t.Error("a second attachment of the key does not lead its own stream")
	}
	settled(t, link)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.inputs) != 0 || len(h.audience) != 0 {
		t.Errorf("the handler was told %v and audience %v, want nothing", h.inputs, h.audience)
	}
}

func TestLocalBusAudienceFollowsPresenceInOrderOnceStartedAndNeverFromWithin(t *testing.T) {
	t.Parallel()
	h := newHandler()
	link, _, _ := Local{}.Attach(context.Background(), "k", h)
	defer link.Close()
	// The owner calls the link under the handler's lock: a call of the
	// handler from within SetPresent or Start would never return.
	h.mu.Lock()
	link.SetPresent(false) // before Start: kept, not told
	h.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	h.mu.Lock()
	early := len(h.audience)
	link.Start()
	h.mu.Unlock()
	if early != 0 {
		t.Fatalf("the handler was told %d audiences before Start", early)
	}
	h.waitAudience(t, 0)
	h.mu.Lock()
	link.SetPresent(true)
	h.mu.Unlock()
	h.waitAudience(t, 0, 1)
	h.mu.Lock()
	link.SetPresent(true) // no change: nothing to tell
	link.SetPresent(false)
	link.SetPresent(true) // back before the teller ran, maybe
	link.SetPresent(false)
	h.mu.Unlock()
	settled(t, link)
	h.mu.Lock()
	got := append([]int(nil), h.audience...)
	h.mu.Unlock()
	if last := got[len(got)-1]; last != 0 {
		t.Fatalf("audience told %v: the last is not the presence last set", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("audience told %v: the same twice in a row", got)
		}
	}
}

func TestLocalBusTellsNothingOnceClosed(t *testing.T) {
	t.Parallel()
	h := newHandler()
	link, _, _ := Local{}.Attach(context.Background(), "k", h)
	link.Start()
	link.Close()
	link.Close() // harmless
	link.SetPresent(false)
	if err := link.Send(context.Background(), []byte("late")); err == nil {
		t.Error("Send on a closed link succeeded")
	}
	settled(t, link)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.audience) != 0 {
		t.Errorf("a closed link told the audience %v", h.audience)
	}
	if len(h.inputs) != 0 {
		t.Errorf("a closed link passed on input %v", h.inputs)
	}
}

func TestLocalBusInputGoesToTheHandlerOnceStarted(t *testing.T) {
	t.Parallel()
	h := newHandler()
	link, _, _ := Local{}.Attach(context.Background(), "k", h)
	defer link.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := link.Send(ctx, []byte("early")); err != context.DeadlineExceeded {
		t.Fatalf("Send before Start = %v, want it to wait until its context is done", err)
	}
	link.Start()
	for _, p := range []string{"one", "two"} {
		if err := link.Send(context.Background(), []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.inputs) != 2 || h.inputs[0] != "one" || h.inputs[1] != "two" {
		t.Errorf("the handler got %q, want one then two", h.inputs)
	}
}
