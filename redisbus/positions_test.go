package redisbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsgate/wsgate/broadcast"
)

// Positions and fencing: the numbers and the epoch live with the stream in
// Redis, and only the lease's holder, continuing from the stream's last
// number, can add to them.

// seqs returns the messages' positions' numbers.
func seqs(msgs []*broadcast.Message) []int {
	out := make([]int, len(msgs))
	for i, m := range msgs {
		out[i] = int(m.Seq)
	}
	return out
}

func TestPositionsAreTheBussAndATakeoverContinuesTheEpochAndTheCount(t *testing.T) {
	t.Parallel()
	url := testrunRedis(t)
	a, at := attachWith(t, url, "/feed", 5)
	if !at.Lead || at.Epoch == "" || at.Seq != 0 {
		t.Fatalf("the first attachment: %+v, want the lead of a new history", at)
	}
	msgs := numbered(1, 10)
	if err := a.link.Publish(msgs); err != nil {
		t.Fatal(err)
	}
	assertRun(t, "numbered by the bus", seqs(msgs), 1, 10)
	b, bt := attachWith(t, url, "/feed", 5)
	if bt.Epoch != at.Epoch || bt.Seq != 10 {
		t.Fatalf("a second instance: epoch %q at %d, want %q at 10", bt.Epoch, bt.Seq, at.Epoch)
	}
	assertRun(t, "the replay's positions", seqs(bt.Replay), 6, 10)

	// The leader dies: the other takes over, in the same history, from 10.
	crash(a)
	waitFor(t, leaseTTL+3*tickInterval, "the other instance leads", b.rec.leading)
	more := numbered(11, 12)
	if err := b.link.Publish(more); err != nil {
		t.Fatal(err)
	}
	assertRun(t, "numbered after the takeover", seqs(more), 11, 12)
	c, ct := attachWith(t, url, "/feed", 5)
	if ct.Epoch != at.Epoch || ct.Seq != 12 {
		t.Fatalf("after the takeover: epoch %q at %d, want %q at 12", ct.Epoch, ct.Seq, at.Epoch)
	}
	if b.bus.Takeovers() != 1 || b.bus.LeadingStreams() != 1 {
		t.Errorf("takeovers %d, leading %d; want 1 and 1", b.bus.Takeovers(), b.bus.LeadingStreams())
	}
	if err := b.link.Publish(numbered(13, 13)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "delivered", func() bool { return len(c.rec.delivered()) == 1 })
	if got := c.rec.delivered()[0].Seq; got != 13 {
		t.Fatalf("a relay delivers message 13 as %d", got)
	}

	// The stream's end drops its history: the next one is a new epoch,
	// from 1.
	if err := b.link.Publish([]*broadcast.Message{{Data: []byte("end"), Last: true}}); err != nil {
		t.Fatal(err)
	}
	_, next := attachWith(t, url, "/feed", 5)
	if next.Epoch == at.Epoch || next.Seq != 0 || len(next.Replay) != 0 || !next.Lead {
		t.Fatalf("after the end: %+v, want the lead of a new history", next)
	}
}

func TestFencingALeaderBehindTheStreamsCountCannotPublish(t *testing.T) {
	t.Parallel()
	url := testrunRedis(t)
	a, _ := attachWith(t, url, "/feed", 5)
	b, _ := attachWith(t, url, "/feed", 5)
	leader, other := leaderAndOther(t, a, b)
	if err := leader.link.Publish(numbered(1, 3)); err != nil {
		t.Fatal(err)
	}
	// Another holder added a line behind the leader's back (as a leader
	// that took over while this one was frozen would), and the lease came
	// back to the same value: the count still stops the stale leader.
	rawClient(t, url).Set(context.Background(), keysFor("/feed").seq, "4", time.Minute)
	if err := leader.link.Publish(numbered(4, 4)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a leader behind the stream's count published: %v", err)
	}
	time.Sleep(2 * tickInterval)
	if n := len(other.rec.delivered()); n != 3 {
		t.Errorf("the relay got %d messages, want the 3 published before", n)
	}
	if leader.bus.ErrorCounts()[KindLeaseLost] != 1 {
		t.Errorf("error counts %v, want one lease_lost", leader.bus.ErrorCounts())
	}
}

func TestFencingALeaseIsATokenThatALinkThatLostItNeverHoldsAgain(t *testing.T) {
	t.Parallel()
	url := testrunRedis(t)
	a, _ := attachWith(t, url, "/feed", 0)
	rdb := rawClient(t, url)
	k := keysFor("/feed")
	first := rdb.Get(context.Background(), k.lease).Val()
	if first != a.bus.ID()+"#1" {
		t.Fatalf("the lease holds %q, want the instance's id and token 1", first)
	}
	// The lease expires and the same instance's id takes it with a new
	// token: the old link is not its holder.
	rdb.Set(context.Background(), k.lease, a.bus.ID()+"#2", time.Minute)
	if err := a.link.Publish(numbered(1, 1)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a link published with another token's lease: %v", err)
	}
}
