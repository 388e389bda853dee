package redisbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsgate/wsgate/broadcast"
)

// link follows one stream on this instance. Three goroutines serve it, all
// started by Attach and owned by run, the driver: run itself walks the
// lease (renew or take it, then lead) on a ticker; read is the only reader
// of the subscription and delivers what the leader publishes, or, on the
// leader, wakes feedInput, which takes the input queued in Redis and hands
// it to the handler one at a time. Close asks run to stop: it closes the
// subscription, waits for the other two and takes the instance out of the
// stream in Redis.
type link struct {
	bus *Bus
	key string
	k   keys
	h   broadcast.Handler
	ps  *redis.PubSub
	log *slog.Logger

	started   chan struct{} // closed by Start
	closing   chan struct{} // closed by Close
	poke      chan struct{} // asks run for a tick now
	queued    chan struct{} // tells feedInput that input was queued
	startOnce sync.Once
	closeOnce sync.Once
	failOnce  sync.Once
	helpers   sync.WaitGroup // read and feedInput

	present   atomic.Bool   // this instance has subscribers
	leading   atomic.Bool   // this instance leads: it publishes, and takes input
	ended     atomic.Bool   // the stream's last message was published or delivered
	delivered atomic.Uint64 // the number of the last message known: delivered or published

	pubMu sync.Mutex // one Publish at a time
	seq   uint64     // the last number published; pubMu's

	// run's own.
	holding     bool      // the lease is ours
	drainTo     uint64    // what must be delivered before leading
	drainUntil  time.Time // when waiting for it becomes a failure
	audience    int       // as last told to the handler; -1 before
	lastOK      time.Time // when the last tick Redis answered was sent
	presentSent bool      // the presence as Redis last heard it
}

func newLink(b *Bus, key string, h broadcast.Handler) *link {
	return &link{
		bus:      b,
		key:      key,
		k:        keysFor(key),
		h:        h,
		log:      b.log.With("stream", key),
		started:  make(chan struct{}),
		closing:  make(chan struct{}),
		poke:     make(chan struct{}, 1),
		queued:   make(chan struct{}, 1),
		audience: -1,
	}
}

// attach subscribes to the output channel, then makes the instance present,
// takes the lease if it is free, and reads the last number and the replay,
// so that the subscription delivers what follows them.
func (l *link) attach(ctx context.Context) (broadcast.Attachment, error) {
	l.ps = l.bus.rdb.Subscribe(ctx, l.k.out)
	at, err := l.attachOnSubscription(ctx)
	if err != nil {
		l.ps.Close()
		if at.Lead {
			l.leave()
		}
		return broadcast.Attachment{}, err
	}
	l.present.Store(true)
	l.presentSent = true
	return at, nil
}

func (l *link) attachOnSubscription(ctx context.Context) (broadcast.Attachment, error) {
	var at broadcast.Attachment
	if err := l.confirm(ctx, l.k.out); err != nil {
		return at, err
	}
	res, err := attachScript.Run(ctx, l.bus.rdb, []string{l.k.present, l.k.seq, l.k.replay, l.k.lease},
		l.bus.id, ms(presenceTTL), ms(keepTTL), l.k.in, l.bus.replay, ms(leaseTTL)).Slice()
	if err != nil {
		return at, err
	}
	seq, ok1 := res[0].(int64)
	took, ok2 := res[1].(int64)
	entries, ok3 := res[2].([]any)
	if !ok1 || !ok2 || !ok3 {
		return at, errBadEntry
	}
	at.Lead = took == 1
	for _, e := range entries {
		s, _ := e.(string)
		_, m, rest, err := nextEntry(s)
		if err != nil || rest != "" {
			return at, errBadEntry
		}
		at.Replay = append(at.Replay, m)
	}
	l.delivered.Store(uint64(seq))
	if at.Lead {
		l.holding = true
		if err := l.subscribeInput(ctx); err != nil {
			return at, err
		}
		if err := l.confirm(ctx, l.k.in); err != nil {
			return at, err
		}
	}
	return at, nil
}

// confirm reads the subscription until Redis confirms it subscribed to
// channel; before read runs. Messages before it are dropped: none is
// expected.
func (l *link) confirm(ctx context.Context, channel string) error {
	for {
		reply, err := l.ps.ReceiveTimeout(ctx, callTimeout)
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if sub, ok := reply.(*redis.Subscription); ok && sub.Kind == "subscribe" && sub.Channel == channel {
			return nil
		}
	}
}

// subscribeInput moves the subscription from the output channel, which
// only the leader publishes to, to the input one, and lets Publish run.
func (l *link) subscribeInput(ctx context.Context) error {
	if err := l.ps.Subscribe(ctx, l.k.in); err != nil {
		return err
	}
	if err := l.ps.Unsubscribe(ctx, l.k.out); err != nil {
		return err
	}
	l.pubMu.Lock()
	l.seq = l.delivered.Load()
	l.leading.Store(true)
	l.pubMu.Unlock()
	l.audience = -1
	l.log.Debug("leading the stream", "seq", l.seq)
	return nil
}

// Start lets the link call its handler.
func (l *link) Start() { l.startOnce.Do(func() { close(l.started) }) }

// Close asks the driver to take the instance out of the stream.
func (l *link) Close() { l.closeOnce.Do(func() { close(l.closing) }) }

// SetPresent records whether this instance has subscribers, and has the
// driver tell Redis now.
func (l *link) SetPresent(present bool) {
	l.present.Store(present)
	l.tickSoon()
}

func (l *link) tickSoon() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

func (l *link) isClosing() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// fail tells the handler the link is broken, once, unless it was closed on
// purpose, and closes it.
func (l *link) fail(err error) {
	l.failOnce.Do(func() {
		if l.isClosing() {
			return
		}
		l.log.Error("bus link failed; ending the stream here", "err", err)
		if !errors.Is(err, ErrLeaseLost) && !errors.Is(err, errGap) && !errors.Is(err, errBadEntry) {
			l.bus.trouble(err) // Redis may be out of reach
		}
		l.h.Fail(err)
		l.Close()
	})
}

// run drives the link until it is closed: a tick at once, then every
// tickInterval or when asked, and while waiting to lead, a look every few
// milliseconds at what has been delivered.
func (l *link) run() {
	defer l.bus.wg.Done()
	defer l.bus.remove(l)
	l.helpers.Add(2)
	go l.read()
	go l.feedInput()
	defer l.leave()
	select {
	case <-l.started:
	case <-l.closing:
		return
	}
	l.lastOK = time.Now()
	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	l.tick()
	for !l.isClosing() {
		var drained <-chan time.Time
		if l.holding && !l.leading.Load() {
			drained = time.After(5 * time.Millisecond)
		}
		select {
		case <-l.closing:
			return
		case <-ticker.C:
			l.tick()
		case <-l.poke:
			l.tick()
		case <-drained:
		}
		l.maybeLead()
	}
}

// leave closes the subscription, waits for read and feedInput, and takes
// the instance out of the stream in Redis: its presence, and its lease.
func (l *link) leave() {
	l.ps.Close()
	l.helpers.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := leaveScript.Run(ctx, l.bus.rdb, []string{l.k.lease, l.k.present}, l.bus.id, l.k.in).Err()
	if err != nil {
		l.log.Debug("leaving the stream in Redis failed; the lease and presence will expire", "err", err)
	}
}

// tick tells Redis of the instance's presence, renews or takes the lease,
// and tells the leader's handler the audience.
func (l *link) tick() {
	present := l.present.Load()
	want := !l.ended.Load()
	sent := time.Now() // Redis renews the lease at this time or later
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	res, err := tickScript.Run(ctx, l.bus.rdb, []string{l.k.lease, l.k.present, l.k.seq, l.k.replay},
		l.bus.id, ms(leaseTTL), flag(present), ms(presenceTTL), ms(keepTTL),
		flag(present != l.presentSent), l.k.in, flag(want)).Int64Slice()
	cancel()
	if err == nil && len(res) != 3 {
		err = errors.New("unexpected reply to the tick script")
	}
	if err != nil {
		if time.Since(l.lastOK) >= l.patience() {
			l.fail(err)
		}
		return
	}
	l.lastOK, l.presentSent = sent, present
	state, seq, instances := res[0], uint64(res[1]), int(res[2])
	switch {
	case l.holding && l.ended.Load():
		l.holding = false // the last message freed the lease
	case l.holding && state != 1:
		l.fail(ErrLeaseLost)
		return
	case state == 2:
		l.holding, l.drainTo, l.drainUntil = true, seq, time.Now().Add(drainWait)
	}
	if l.leading.Load() && instances != l.audience && !l.isClosing() {
		l.audience = instances
		l.h.Audience(instances)
	}
}

// patience is how long ticks may fail before the link does: a holder of
// the lease stops before it can expire; another instance before its
// presence can.
func (l *link) patience() time.Duration {
	if l.holding {
		return leaseTTL - leaseMargin
	}
	return presenceTTL - leaseMargin
}

// maybeLead starts leading once the lease is held and every message
// published before has been delivered: it moves the subscription from the
// output channel to the input one, and tells the handler.
func (l *link) maybeLead() {
	if !l.holding || l.leading.Load() || l.ended.Load() || l.isClosing() {
		return
	}
	if l.delivered.Load() < l.drainTo {
		if time.Now().After(l.drainUntil) {
			l.fail(fmt.Errorf("%w: %d published before the lease was taken, %d delivered", errGap, l.drainTo, l.delivered.Load()))
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := l.subscribeInput(ctx); err != nil {
		l.fail(err)
		return
	}
	l.h.Lead()
	l.tick() // the audience
}

// read is the only reader of the subscription: it relays the leader's
// messages to the handler, or, while leading, passes input on. A
// subscription silent for healthInterval is pinged; one that stays silent
// for another fails the link.
func (l *link) read() {
	defer l.helpers.Done()
	select {
	case <-l.started:
	case <-l.closing:
		return
	}
	pinged := false
	for {
		reply, err := l.ps.ReceiveTimeout(context.Background(), healthInterval)
		if l.isClosing() {
			return
		}
		switch {
		case err != nil && isTimeout(err) && !pinged:
			pinged = true
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			err = l.ps.Ping(ctx)
			cancel()
			if err != nil {
				l.fail(err)
				return
			}
			continue
		case err != nil && isTimeout(err):
			l.fail(errors.New("subscription silent: ping unanswered"))
			return
		case err != nil:
			l.fail(err)
			return
		}
		pinged = false
		if m, ok := reply.(*redis.Message); ok {
			if err := l.receive(m); err != nil {
				l.fail(err)
				return
			}
		}
	}
}

// receive handles one message of the subscription.
func (l *link) receive(m *redis.Message) error {
	switch {
	case m.Channel == l.k.out:
		return l.relay(m.Payload)
	case m.Payload == "p":
		l.tickSoon() // an instance's presence changed: count again
	case m.Payload == "i":
		select {
		case l.queued <- struct{}{}:
		default:
		}
	}
	return nil
}

// relay delivers the entries of one publication that follow what was
// delivered before, and fails on a gap.
func (l *link) relay(payload string) error {
	for len(payload) > 0 && !l.leading.Load() && !l.ended.Load() {
		seq, m, rest, err := nextEntry(payload)
		if err != nil {
			return err
		}
		payload = rest
		last := l.delivered.Load()
		if seq <= last {
			continue // in the replay, or delivered already
		}
		if seq != last+1 {
			return fmt.Errorf("%w: message %d after %d", errGap, seq, last)
		}
		l.h.Deliver(m)
		l.delivered.Store(seq)
		if m.Last {
			l.ended.Store(true)
		}
	}
	return nil
}

// feedInput takes the input queued for the leader, when told some was or
// every tickInterval, and hands it to the handler, one at a time, in order.
func (l *link) feedInput() {
	defer l.helpers.Done()
	select {
	case <-l.started:
	case <-l.closing:
		return
	}
	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-l.queued:
		case <-ticker.C:
		}
		for l.leading.Load() && !l.isClosing() {
			inputs, err := l.takeInput()
			if err != nil {
				l.log.Debug("taking input failed", "err", err) // the tick fails the link if Redis is gone
				break
			}
			if len(inputs) == 0 {
				break
			}
			for _, p := range inputs {
				l.h.Input(p)
			}
		}
	}
}

// takeInput takes the oldest inputs queued, takeInputs at most.
func (l *link) takeInput() ([][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := takeScript.Run(ctx, l.bus.rdb, []string{l.k.lease, l.k.input, l.k.inbytes}, l.bus.id, takeInputs).StringSlice()
	if err != nil {
		return nil, err
	}
	inputs := make([][]byte, len(res))
	for i, s := range res {
		inputs[i] = []byte(s)
	}
	return inputs, nil
}

// Publish publishes msgs with the next numbers, through the script that
// checks the lease; see broadcast.Link. On an error the link fails.
func (l *link) Publish(msgs []*broadcast.Message) error {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	if !l.leading.Load() || l.ended.Load() || l.isClosing() {
		return errNotLeading
	}
	for len(msgs) > 0 {
		n := min(len(msgs), maxEntriesPerCall)
		if err := l.publish(msgs[:n]); err != nil {
			l.fail(err)
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// publish runs the script for at most maxEntriesPerCall messages; pubMu is
// held.
func (l *link) publish(msgs []*broadcast.Message) error {
	seq := l.seq
	ends := msgs[len(msgs)-1].Last
	args := make([]any, 6, 6+len(msgs))
	for _, m := range msgs {
		seq++
		args = append(args, appendEntry(make([]byte, 0, entryHeader+len(m.Data)), seq, m))
	}
	args[0], args[1], args[2], args[3], args[4], args[5] = l.bus.id, seq, l.bus.replay, l.k.out, flag(ends), ms(keepTTL)
	// Before the script runs: its PUBLISH may reach read before its reply
	// reaches us, and must not be delivered back.
	l.delivered.Store(seq)
	if ends {
		l.ended.Store(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dataTimeout)
	defer cancel()
	ok, err := publishScript.Run(ctx, l.bus.rdb, []string{l.k.lease, l.k.seq, l.k.replay, l.k.input, l.k.inbytes}, args...).Int()
	switch {
	case err != nil:
		return fmt.Errorf("publish: %w", err)
	case ok != 1:
		return ErrLeaseLost
	}
	l.seq = seq
	return nil
}

// Send queues p for the leader, waiting while the queue is full, with a
// backoff, until ctx is done. Each try is bounded by dataTimeout, not by
// ctx: one cut short might have queued p, and is not tried again.
func (l *link) Send(ctx context.Context, p []byte) error {
	delay := time.Millisecond
	for {
		callCtx, cancel := context.WithTimeout(context.Background(), dataTimeout)
		ok, err := sendScript.Run(callCtx, l.bus.rdb, []string{l.k.input, l.k.inbytes},
			p, inputBudget, maxInputs, l.k.in, ms(keepTTL)).Int()
		cancel()
		if err != nil || ok == 1 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.closing:
			return errClosed
		case <-time.After(delay):
		}
		delay = min(2*delay, sendBackoffMax)
	}
}

// isTimeout reports whether err is a read that timed out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ms formats d in milliseconds, for a script.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// flag formats b as a script's "0" or "1".
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
