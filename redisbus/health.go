package redisbus

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Health: the bus is up once Redis has answered and until a call finds it
// unreachable or unusable (a refused password, a replica that will not take
// writes, a Redis out of memory...); then the prober tries again with
// backoff, and the bus is up again once Redis answers the probe. The
// program is ready only while the bus is up (its /healthz, sd_notify). A
// fault that retrying cannot mend, found at start-up (Connect), is the
// caller's to report and exit on.

// health is the bus's state as the program sees it, and its counters.
type health struct {
	up        atomic.Bool
	reason    atomic.Pointer[string] // why it is not up
	runID     atomic.Pointer[string] // Redis's run_id when it last answered INFO
	leading   atomic.Int64           // links that lead their stream
	takeovers atomic.Uint64          // leads taken of a stream another instance led
	errors    [len(ErrorKinds)]atomic.Uint64

	mu        sync.Mutex // serializes the log lines of changes
	lastSaid  string     // the last reason logged, so that a new one is told
	connected bool       // Redis has answered once: a return is "reachable again"
}

// kindIndex numbers the error kinds, for the counters.
var kindIndex = func() map[string]int {
	m := make(map[string]int, len(ErrorKinds))
	for i, k := range ErrorKinds {
		m[k] = i
	}
	return m
}()

// notConnected is the reason of a bus that has not reached Redis yet.
const notConnected = "not connected yet"

func (h *health) init() {
	reason := notConnected
	h.reason.Store(&reason)
}

// Health reports whether the bus is up, and when it is not, why, in
// Redis's terms.
func (b *Bus) Health() (up bool, reason string) {
	if b.health.up.Load() && !b.down.Load() {
		return true, ""
	}
	return false, *b.health.reason.Load()
}

// BusUp reports whether the bus is up (for the metrics).
func (b *Bus) BusUp() bool {
	up, _ := b.Health()
	return up
}

// LeadingStreams returns how many streams this instance leads.
func (b *Bus) LeadingStreams() int { return int(b.health.leading.Load()) }

// Takeovers returns how many times this instance took the lead of a stream
// that another instance had led (it died, froze, or left).
func (b *Bus) Takeovers() uint64 { return b.health.takeovers.Load() }

// ErrorCounts returns how many errors of each kind the bus has met.
func (b *Bus) ErrorCounts() map[string]uint64 {
	out := make(map[string]uint64, len(ErrorKinds))
	for i, k := range ErrorKinds {
		out[k] = b.health.errors[i].Load()
	}
	return out
}

// count counts an error of kind.
func (b *Bus) count(kind string) {
	i, ok := kindIndex[kind]
	if !ok {
		i = kindIndex[KindOther]
	}
	b.health.errors[i].Add(1)
}

// Connect reaches Redis at start-up and checks that the bus can work there:
// it answers, takes the password, has the database, lets the user run the
// bus's scripts and publish. It returns an error that retrying cannot mend,
// in Redis's terms; any other failure (nothing listens yet, no answer in
// time) leaves the bus down, trying again in the background, and Connect
// returns nil.
// Once connected, or trying to, the bus checks Redis every
// healthInterval/5 while it has no other news, so that its health follows
// Redis even with no stream.
func (b *Bus) Connect(ctx context.Context) error {
	err := b.check(ctx)
	if be := explainIf(err); be != nil && be.Fatal() {
		b.setReason(be.text)
		return be
	}
	if err == nil {
		b.answered()
	} else {
		b.trouble(err)
	}
	b.wg.Add(1)
	go b.monitor()
	return nil
}

// explainIf is explain, for an error that may be nil.
func explainIf(err error) *busError {
	if err == nil {
		return nil
	}
	return explain(err)
}

// monitorInterval is how often the bus checks an idle Redis.
const monitorInterval = time.Second

// monitor checks Redis every monitorInterval while the bus is up, until
// the bus is closed; while it is down, the prober does.
func (b *Bus) monitor() {
	defer b.wg.Done()
	t := time.NewTicker(monitorInterval)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
		}
		if b.down.Load() {
			continue
		}
		if err := b.check(context.Background()); err != nil {
			b.trouble(err)
		} else {
			b.answered()
		}
	}
}

// checkScript is what Connect and the prober run: a write of a key and a
// publication, as the bus makes, on names of its own.
//
// KEYS: a key under wsgate:, a channel under wsgate:.
var checkScript = redis.NewScript(`
redis.call('SET', KEYS[1], '1', 'PX', 10000)
redis.call('PUBLISH', KEYS[2], '')
return 1
`)

// check asks Redis whether the bus can work there, and notes its run_id.
func (b *Bus) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	if err := checkScript.Run(ctx, b.rdb, []string{"wsgate:{probe}:" + b.id, "wsgate:{probe}:ping"}).Err(); err != nil {
		return err
	}
	b.learnRunID(ctx)
	return nil
}

// learnRunID notes Redis's run_id, which tells a Redis that cut a
// subscription off from one that restarted. INFO may be denied: it is only
// a help.
func (b *Bus) learnRunID(ctx context.Context) {
	if info, err := b.rdb.Info(ctx, "server").Result(); err == nil {
		runID := infoField(info, "run_id")
		b.health.runID.Store(&runID)
	}
}

// answered marks the bus up after Redis answered, and says so when it was
// not: connected the first time, reachable again after that, whichever
// call finds it first (this, or the prober).
func (b *Bus) answered() {
	if b.health.up.Swap(true) {
		return
	}
	b.sayUp(0)
}

// sayUp logs that Redis answers, once for each time it was lost; attempts
// is how many probes it took, 0 when another call found it.
func (b *Bus) sayUp(attempts int) {
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	switch {
	case !b.health.connected:
		b.health.connected = true
		b.log.Info("bus connected")
	case b.health.lastSaid != "":
		b.log.Info("bus reachable again", "attempts", attempts)
	}
	b.health.lastSaid = ""
}

// setReason records why the bus is not up.
func (b *Bus) setReason(reason string) { b.health.reason.Store(&reason) }

// trouble notes that a call to Redis failed. A failure that makes Redis
// unusable, while it was answering, marks the bus down (Attach refuses, and
// Health says why) and starts the prober; others (a lost lease, a gap) are
// the link's own.
func (b *Bus) trouble(err error) {
	be := explain(err)
	if errors.Is(err, ErrUnavailable) || !downs(be.kind) {
		return
	}
	b.setReason(be.text)
	if !b.down.CompareAndSwap(false, true) {
		return
	}
	b.count(be.kind)
	b.health.up.Store(false)
	b.say(be.text, func() { b.log.Error("bus unreachable; retrying", "err", be.text) })
	b.wg.Add(1)
	go b.probe()
}

// downs reports whether an error of kind makes Redis unusable for now.
func downs(kind string) bool {
	switch kind {
	case KindUnreachable, KindAuth, KindNoSuchDB, KindPermission, KindNotRedis, KindReadOnly, KindMemory, KindLoading:
		return true
	}
	return false
}

// say logs a change of reason once: the same reason again is not told.
func (b *Bus) say(reason string, log func()) {
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	if reason != b.health.lastSaid {
		b.health.lastSaid = reason
		log()
	}
}

// probe checks Redis with exponential backoff until the bus can work
// there again, then lets Attach through.
func (b *Bus) probe() {
	defer b.wg.Done()
	delay := probeBackoffMin
	for attempt := 1; ; attempt++ {
		select {
		case <-b.closing:
			return
		case <-time.After(delay):
		}
		err := b.check(context.Background())
		if err == nil {
			b.down.Store(false)
			b.health.up.Store(true)
			b.sayUp(attempt)
			return
		}
		be := explain(err)
		b.setReason(be.text)
		b.say(be.text, func() { b.log.Warn("bus still unusable", "err", be.text) })
		b.log.Debug("bus still unreachable", "err", err, "next", delay)
		delay = min(2*delay, probeBackoffMax)
	}
}

// leads counts a link that leads its stream now; tookOver says the stream
// had been led by another instance.
func (b *Bus) leads(tookOver bool) {
	b.health.leading.Add(1)
	if tookOver {
		b.health.takeovers.Add(1)
	}
}
