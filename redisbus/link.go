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
// lease (renew or take it, then lead) on a ticker, and watches that the
// subscription is alive (a ping when it has been silent); read is the only
// reader of the subscription and delivers what the leader publishes, or, on
// the leader, wakes feedInput, which takes the input queued in Redis and
// hands it to the handler one at a time. Close asks run to stop: it closes
// the subscription, waits for the other two and takes the instance out of
// the stream in Redis.
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

	present   atomic.Bool            // this instance has subscribers
	leading   atomic.Bool            // this instance leads: it publishes, and takes input
	ended     atomic.Bool            // the stream's last message was published or delivered
	delivered atomic.Uint64          // the number of the last message known: delivered or published
	lease     atomic.Pointer[string] // the lease's value while the link holds it
	heard     atomic.Int64           // unix ns the subscription last brought something
	failed    atomic.Bool            // fail ran

	pubMu sync.Mutex // one Publish at a time
	seq   uint64     // the last number published; pubMu's

	// run's own.
	holding     bool      // the lease is ours
	tookOver    bool      // the lease taken is of a stream another instance led
	counted     bool      // counted among the bus's leading links
	drainTo     uint64    // what must be delivered before leading
	drainUntil  time.Time // when waiting for it becomes a failure
	audience    int       // as last told to the handler; -1 before
	lastOK      time.Time // when the last tick Redis answered was sent
	presentSent bool      // the presence as Redis last heard it
	pinged      bool      // the silent subscription was pinged
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

// leaseValue returns the lease's value while the link holds it, else "".
func (l *link) leaseValue() string {
	if v := l.lease.Load(); v != nil {
		return *v
	}
	return ""
}

// attach subscribes to the output channel, then makes the instance present,
// takes the lease if it is free, and reads the epoch, the last number and
// the replay, so that the subscription delivers what follows them.
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
	l.heard.Store(time.Now().UnixNano())
	return at, nil
}

func (l *link) attachOnSubscription(ctx context.Context) (broadcast.Attachment, error) {
	var at broadcast.Attachment
	if err := l.confirm(ctx, l.k.out); err != nil {
		return at, err
	}
	res, err := attachScript.Run(ctx, l.bus.rdb, []string{l.k.present, l.k.seq, l.k.replay, l.k.lease, l.k.epoch, l.k.fence},
		l.bus.id, ms(presenceTTL), ms(keepTTL), l.k.in, l.bus.replay, ms(leaseTTL), broadcast.NewEpoch()).Slice()
	if err != nil {
		return at, err
	}
	if len(res) != 5 {
		return at, errBadEntry
	}
	seq, ok1 := res[0].(int64)
	taken, ok2 := res[1].(string)
	entries, ok3 := res[2].([]any)
	epoch, ok4 := res[3].(string)
	history, ok5 := res[4].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || seq < 0 {
		return at, errBadEntry
	}
	at.Lead, at.Epoch, at.Seq = taken != "", epoch, uint64(seq)
	if at.Replay, err = replayOf(entries, at.Seq); err != nil {
		return at, err
	}
	l.delivered.Store(at.Seq)
	if at.Lead {
		l.lease.Store(&taken)
		l.holding, l.tookOver = true, history == 1 && seq > 0
		if err := l.subscribeInput(ctx); err != nil {
			return at, err
		}
		if err := l.confirm(ctx, l.k.in); err != nil {
			return at, err
		}
	}
	return at, nil
}

// replayOf decodes the replay's entries, which must be numbered one after
// the other up to last.
func replayOf(entries []any, last uint64) ([]*broadcast.Message, error) {
	replay := make([]*broadcast.Message, 0, len(entries))
	for i, e := range entries {
		s, _ := e.(string)
		seq, m, rest, err := nextEntry(s)
		if err != nil || rest != "" || seq != last-uint64(len(entries)-1-i) {
			return nil, errBadEntry
		}
		m.Seq = seq
		replay = append(replay, m)
	}
	return replay, nil
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
	l.counted = true
	l.bus.leads(l.tookOver)
	l.log.Info("leading the stream", "seq", l.seq, "took_over", l.tookOver)
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
		l.failed.Store(true)
		be := explain(err)
		l.bus.count(be.kind)
		switch be.kind {
		case KindLeaseLost:
			l.log.Warn("lost the lead of the stream; stopping its process", "err", be.text)
		default:
			l.log.Error("bus link failed; ending the stream here", "err", be.text)
		}
		l.bus.trouble(be) // Redis may be out of reach
		l.h.Fail(be)
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
			l.watchSubscription()
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
	if l.counted {
		l.counted = false
		l.bus.health.leading.Add(-1)
		if !l.ended.Load() && !l.failed.Load() {
			l.log.Info("handing the stream over", "seq", l.delivered.Load())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := leaveScript.Run(ctx, l.bus.rdb, []string{l.k.lease, l.k.present}, l.bus.id, l.k.in, l.leaseValue()).Err()
	if err != nil {
		l.log.Debug("leaving the stream in Redis failed; the lease and presence will expire", "err", err)
	}
}

// tick tells Redis of the instance's presence, renews or takes the lease,
// and tells the leader's handler the audience. A holder that could not
// renew for longer than the lease lasts (it was frozen, or starved) has
// lost it, whatever Redis says next.
func (l *link) tick() {
	if l.holding && time.Since(l.lastOK) > leaseTTL {
		l.fail(fmt.Errorf("%w: not renewed for %v", ErrLeaseLost, time.Since(l.lastOK).Round(time.Millisecond)))
		return
	}
	present := l.present.Load()
	want := !l.ended.Load()
	sent := time.Now() // Redis renews the lease at this time or later
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	res, err := tickScript.Run(ctx, l.bus.rdb,
		[]string{l.k.lease, l.k.present, l.k.seq, l.k.replay, l.k.epoch, l.k.fence},
		l.leaseValue(), ms(leaseTTL), flag(present), l.bus.id, ms(presenceTTL), ms(keepTTL),
		flag(present != l.presentSent), l.k.in, flag(want && !l.holding)).Slice()
	cancel()
	var state, seq, instances, history int64
	var taken string
	if err == nil {
		var ok bool
		if ok = len(res) == 5; ok {
			state, _ = res[0].(int64)
			seq, _ = res[1].(int64)
			instances, _ = res[2].(int64)
			taken, ok = res[3].(string)
			history, _ = res[4].(int64)
		}
		if !ok {
			err = errors.New("unexpected reply to the tick script")
		}
	}
	if err != nil {
		if time.Since(l.lastOK) >= l.patience() {
			l.fail(err)
		}
		return
	}
	l.bus.answered()
	l.lastOK, l.presentSent = sent, present
	switch {
	case l.holding && l.ended.Load():
		l.holding = false // the last message freed the lease
	case l.holding && state != 1:
		l.fail(ErrLeaseLost)
		return
	case state == 2:
		l.lease.Store(&taken)
		l.holding, l.tookOver = true, history == 1 && seq > 0
		l.drainTo, l.drainUntil = uint64(seq), time.Now().Add(drainWait)
	}
	if l.leading.Load() && int(instances) != l.audience && !l.isClosing() {
		l.audience = int(instances)
		l.h.Audience(int(instances))
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

// watchSubscription pings a subscription that has been silent for
// healthInterval, and fails the link when the ping is not answered within
// as long again: the connection is dead. Reads wait without a deadline,
// so that a read is never cut in the middle of a message.
func (l *link) watchSubscription() {
	silent := time.Since(time.Unix(0, l.heard.Load()))
	switch {
	case silent < healthInterval:
		l.pinged = false
	case !l.pinged:
		l.pinged = true
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := l.ps.Ping(ctx)
		cancel()
		if err != nil && !l.isClosing() {
			l.fail(err)
		}
	case silent >= 2*healthInterval:
		l.fail(errors.New("the subscription is silent: Redis did not answer its ping"))
	}
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
// messages to the handler, or, while leading, passes input on. It waits
// without a deadline (run watches for silence); an error ends the
// subscription, explained in Redis's terms.
func (l *link) read() {
	defer l.helpers.Done()
	select {
	case <-l.started:
	case <-l.closing:
		return
	}
	for {
		reply, err := l.ps.Receive(context.Background())
		if l.isClosing() {
			return
		}
		if err != nil {
			l.fail(l.subscriptionLost(err))
			return
		}
		l.heard.Store(time.Now().UnixNano())
		if m, ok := reply.(*redis.Message); ok {
			if err := l.receive(m); err != nil {
				l.fail(err)
				return
			}
		}
	}
}

// subscriptionLost explains why the subscription ended: Redis may have cut
// it off while still running.
func (l *link) subscriptionLost(err error) error {
	runID := ""
	if id := l.bus.health.runID.Load(); id != nil {
		runID = *id
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return l.bus.explainCutOff(ctx, err, runID)
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
		if !m.Last {
			m.Seq = seq
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
	res, err := takeScript.Run(ctx, l.bus.rdb, []string{l.k.lease, l.k.input, l.k.inbytes}, l.leaseValue(), takeInputs).StringSlice()
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
// checks the lease and the last number; see broadcast.Link. On an error
// the link fails.
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

// publish runs the script for at most maxEntriesPerCall messages, and
// numbers them once it has; pubMu is held. The last message of a stream
// has an entry number, for the relays' order, but no position.
func (l *link) publish(msgs []*broadcast.Message) error {
	const fixed = 8 // the script's arguments before the entries
	before, seq := l.seq, l.seq
	ends := msgs[len(msgs)-1].Last
	args := make([]any, fixed, fixed+len(msgs))
	for _, m := range msgs {
		seq++
		args = append(args, appendEntry(make([]byte, 0, entryHeader+len(m.Data)), seq, m))
	}
	// Under Sentinel the entries are published once a replica has them;
	// the end goes at once: a failover that loses it loses no line.
	replicated := l.bus.waitsForReplicas() && !ends
	args[0], args[1], args[2], args[3] = l.leaseValue(), u64(before), u64(seq), l.bus.replay
	args[4], args[5], args[6], args[7] = l.k.out, flag(ends), ms(keepTTL), flag(!replicated)
	// Before the script runs: its PUBLISH may reach read before its reply
	// reaches us, and must not be delivered back.
	l.delivered.Store(seq)
	if ends {
		l.ended.Store(true)
	}
	keys := []string{l.k.lease, l.k.seq, l.k.replay, l.k.input, l.k.inbytes, l.k.epoch}
	var ok int64
	var err error
	if replicated {
		ok, err = l.publishReplicated(keys, args, seq)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), dataTimeout)
		ok, err = publishScript.Run(ctx, l.bus.rdb, keys, args...).Int64()
		cancel()
	}
	switch {
	case err != nil:
		return fmt.Errorf("publish: %w", err)
	case ok == -1:
		return fmt.Errorf("%w: the stream has lines this instance never published", ErrLeaseLost)
	case ok != 1:
		return ErrLeaseLost
	}
	l.seq = seq
	for i, m := range msgs {
		if !m.Last {
			m.Seq = before + uint64(i) + 1
		}
	}
	return nil
}

// publishReplicated stores the entries (args), waits for a replica to have
// them, then publishes them: three commands in one round trip. A script
// that Redis does not know yet (a new master) is loaded, and the whole
// tried again: nothing of a pipeline whose first script was unknown took
// effect (the announcement checks the number the store sets).
func (l *link) publishReplicated(keys []string, args []any, last uint64) (int64, error) {
	payload := make([]byte, 0, 64<<10)
	for _, e := range args[8:] {
		payload = append(payload, e.([]byte)...)
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), dataTimeout)
		pipe := l.bus.rdb.Pipeline()
		stored := publishScript.EvalSha(ctx, pipe, keys, args...)
		acked := pipe.Do(ctx, "wait", 1, l.bus.replicaWait.Milliseconds())
		announced := announceScript.EvalSha(ctx, pipe, []string{l.k.lease, l.k.seq}, args[0], u64(last), l.k.out, payload)
		_, err := pipe.Exec(ctx)
		if attempt == 1 && (redis.HasErrorPrefix(stored.Err(), "NOSCRIPT") || redis.HasErrorPrefix(announced.Err(), "NOSCRIPT")) {
			err = errors.Join(publishScript.Load(ctx, l.bus.rdb).Err(), announceScript.Load(ctx, l.bus.rdb).Err())
			cancel()
			if err != nil {
				return 0, err
			}
			continue
		}
		cancel()
		if err != nil {
			return 0, err
		}
		ok, _ := stored.Int64()
		if ok != 1 {
			return ok, nil
		}
		if n, _ := acked.Int64(); n < 1 {
			l.bus.unreplicated(l.key)
		} else {
			l.bus.replicated()
		}
		if done, _ := announced.Int64(); done != 1 {
			return 0, nil // another leader took over meanwhile
		}
		return 1, nil
	}
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

// u64 formats n in decimal, for a script.
func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// ms formats d in milliseconds, for a script.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// flag formats b as a script's "0" or "1".
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
