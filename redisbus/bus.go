// Package redisbus is a broadcast.Bus on Redis: several wsgate instances
// that name the same Redis share each broadcast stream, with one process in
// all of them. Every piece of shared state lives in Redis, changed by Lua
// scripts that Redis runs whole; there is no consensus of our own.
//
// For a stream key K, with E the key with its braces escaped (the braces
// make a Redis Cluster hash tag, so that a stream's keys share a slot):
//
//	wsgate:{E}:lease    the leader's instance id and fencing token (ID#N);
//	                    SET NX PX leaseTTL, renewed every tick by the
//	                    leader, taken by another instance with subscribers
//	                    once it has expired
//	wsgate:{E}:fence    the last fencing token given: INCR at each take
//	wsgate:{E}:epoch    the stream's history (broadcast.Position): made by
//	                    the first attach, dropped with the stream's end
//	wsgate:{E}:seq      the sequence number of the last message published
//	wsgate:{E}:replay   a list of the last N entries (RPUSH + LTRIM)
//	wsgate:{E}:present  a sorted set of the instances with subscribers, each
//	                    scored with when its presence expires (Redis time)
//	wsgate:{E}:input    a list: subscribers' input for the leader, each
//	                    message whole, oldest first
//	wsgate:{E}:inbytes  the bytes the input list holds
//	wsgate:{E}:out      channel: the leader's messages, with their numbers
//	wsgate:{E}:in       channel: "i" when input was queued, "p" when an
//	                    instance's presence changed, for the leader
//
// A link follows one stream on one instance. Attach subscribes to the
// output channel first, then reads the replay and the last sequence number
// at one instant: what the subscription delivers afterwards with a number
// up to that one is already known, and dropped; a number that skips one is
// a gap, and fails the link. Every tick (tickInterval), a link refreshes its
// presence and renews the lease, or takes it when free; an instance that
// takes the lease first waits until it has delivered every message
// published before (the last number the tick read), then leads: it
// subscribes to the input channel instead of the output one and starts the
// process. The first instance of a stream takes the lease as it attaches.
// The leader publishes through a script that checks the lease (its token)
// and the last number first, so that an instance that lost the lease
// publishes nothing; and it hands its lines to its own subscribers only
// once that script has run (fencing). The lines' numbers and the epoch are
// the positions clients resume from, on any instance: a takeover continues
// both; the stream's end drops them, so that the next stream is a new
// history. Under Sentinel (sentinel.go), lines are published once a replica
// has them.
//
// Input waits in a list in Redis, bounded (inputBudget bytes, maxInputs
// messages): an instance whose client sends to a full queue waits, so that,
// as without a bus, a process that does not read its stdin holds its
// clients back rather than losing what they send. Input sent while no
// instance leads waits for the next leader.
//
// A broken connection, a gap or a lost lease fails the link: the gateway
// ends the stream on that instance. Until Redis answers again (the bus
// tries with exponential backoff), Attach refuses at once, and Health says
// why (health.go); errors are told in Redis's terms (explain.go).
package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/wsgate/wsgate/broadcast"
)

// Timings. The lease outlives a few missed renewals; a leader that could
// not renew for leaseTTL - leaseMargin gives up before its lease can
// expire, so that two processes never run at once; a dead leader's lease is
// taken over within leaseTTL + tickInterval.
const (
	// leaseTTL is how long a lease lasts unless renewed.
	leaseTTL = 3 * time.Second
	// leaseMargin is how long before its lease could expire a leader that
	// cannot renew it gives up: time for its process to be stopped.
	leaseMargin = time.Second
	// tickInterval is how often a link renews its lease and presence, or
	// tries to take the lease.
	tickInterval = 500 * time.Millisecond
	// presenceTTL is how long an instance counts as present unless it
	// refreshes its presence: a crashed instance's subscribers stop
	// counting after it. Generous: an instance short of CPU that misses
	// refreshes must not look gone, or the leader would stop the process
	// under its subscribers.
	presenceTTL = 10 * time.Second
	// keepTTL is how long a stream's sequence number and replay outlive
	// its last leader's last renewal: long past any change of leader.
	keepTTL = 60 * time.Second
	// callTimeout bounds each call to Redis but those that carry data.
	callTimeout = time.Second
	// dataTimeout bounds a call that publishes or queues input: what its
	// result is unknown after a timeout (it may have run), so it is never
	// tried again, and only a Redis that is stuck should reach it.
	dataTimeout = 5 * time.Second
	// attachTimeout bounds Attach, for a caller whose context has no
	// deadline.
	attachTimeout = 2 * time.Second
	// drainWait bounds how long an instance that took the lease waits for
	// the messages published before.
	drainWait = time.Second
	// healthInterval is how long a subscription may stay silent before it
	// is pinged; a ping unanswered for as long means the connection is dead.
	healthInterval = 5 * time.Second
	// probeBackoffMin and probeBackoffMax bound the delay between PINGs to
	// a Redis that stopped answering.
	probeBackoffMin = 100 * time.Millisecond
	probeBackoffMax = 5 * time.Second
)

// Limits.
const (
	// inputBudget and maxInputs bound the input queue of a stream; an
	// input alone is always taken, whatever its size.
	inputBudget = 4 << 20
	maxInputs   = 1024
	// takeInputs is the most inputs the leader takes at once.
	takeInputs = 16
	// sendBackoffMax bounds the wait between tries to queue input to a
	// full queue.
	sendBackoffMax = 100 * time.Millisecond
	// maxEntriesPerCall is the most entries one script call carries (Lua
	// unpacks them onto its stack).
	maxEntriesPerCall = 1000
)

// Errors a link fails with.
var (
	// ErrUnavailable is returned by Attach while Redis is not answering.
	ErrUnavailable = errors.New("bus unavailable")
	// ErrLeaseLost reports a leader whose lease expired or was taken.
	ErrLeaseLost = errors.New("lease lost")
	// errGap reports a message missed by a subscription.
	errGap = errors.New("messages missed")
	// errNotLeading reports a Publish by an instance that does not lead.
	errNotLeading = errors.New("not leading the stream")
	// errClosed reports a Send on a link that was closed meanwhile.
	errClosed = errors.New("link closed")
)

// Options configure a Bus.
type Options struct {
	// URL is redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], or rediss:// for
	// TLS; or, for Redis Sentinel, redis+sentinel://[[USER]:PASSWORD@]
	// HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB] (sentinel.go).
	URL string
	// Replay is how many of a stream's last messages are kept for
	// instances that attach.
	Replay int
	// Logger receives the bus's log lines, go-redis's own at debug level;
	// slog.Default() when nil.
	Logger *slog.Logger
}

// Bus is a broadcast.Bus on one Redis database. Its methods are safe for
// concurrent use.
type Bus struct {
	rdb      *redis.Client
	id       string // this instance's, unique among all that use the bus
	replay   int
	log      *slog.Logger
	sentinel bool // the master is the sentinels': publications wait for a replica

	replicaWait time.Duration // how long a publication waits for a replica (sentinel.go)

	down    atomic.Bool   // Redis stopped answering; the prober runs
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup

	health health // health.go

	unreplicatedUntil  atomic.Int64 // unix ns: publications do not wait for a replica until then
	warnedUnreplicated atomic.Bool

	mu    sync.Mutex
	links map[*link]struct{}
}

var _ broadcast.Bus = (*Bus)(nil)

// New returns a bus on the Redis that opts.URL names. It does not connect:
// the first Attach does.
func New(opts Options) (*Bus, error) {
	var rdb *redis.Client
	sentinel := isSentinelURL(opts.URL)
	if sentinel {
		fo, err := parseSentinelURL(opts.URL)
		if err != nil {
			return nil, err
		}
		rdb = failoverClient(fo)
	} else {
		ro, err := parseURL(opts.URL)
		if err != nil {
			return nil, err
		}
		rdb = client(ro)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	id, err := instanceID()
	if err != nil {
		rdb.Close()
		return nil, err
	}
	redis.SetLogger(libraryLog{log})
	b := &Bus{
		rdb:      rdb,
		id:       id,
		replay:   max(opts.Replay, 0),
		log:      log.With("bus", Redact(opts.URL)),
		sentinel: sentinel,
		closing:  make(chan struct{}),

		replicaWait: replicaWait,
		links:       make(map[*link]struct{}),
	}
	b.health.init()
	return b, nil
}

// clientName is the name the bus's connections give Redis (CLIENT LIST).
const clientName = "wsgate"

// client returns a client of the one Redis ro names, with the bus's
// settings.
func client(ro *redis.Options) *redis.Client {
	ro.ClientName = clientName
	ro.Protocol = 2
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	ro.DialTimeout = callTimeout
	ro.ReadTimeout = dataTimeout
	ro.WriteTimeout = dataTimeout
	ro.MaxRetries = -1 // none: a script run twice would publish or queue twice
	ro.ContextTimeoutEnabled = true
	return redis.NewClient(ro)
}

// parseURL checks a redis:// or rediss:// URL and returns go-redis's
// options for it. Its errors never quote the URL, which may hold a password.
func parseURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bus URL %s: cannot parse it", Redact(raw))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("bus URL %s: want redis:// or rediss:// (redis+sentinel:// for Sentinel)", Redact(raw))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bus URL %s: no host", Redact(raw))
	}
	ro, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("bus URL %s: %s", Redact(raw), strings.ReplaceAll(err.Error(), raw, Redact(raw)))
	}
	return ro, nil
}

// Redact returns a bus URL fit for logs: without its password and query.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

// instanceID returns an id for this instance: host name and pid, for the
// operator reading Redis, and random bytes, so that a restarted instance is
// another one.
func instanceID() (string, error) {
	host, _ := os.Hostname()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:])), nil
}

// ID is this instance's id on the bus, as the lease and presence name it.
func (b *Bus) ID() string { return b.id }

// Attach subscribes to the stream key, makes the instance present, and
// returns the link and the replay; see broadcast.Bus.
func (b *Bus) Attach(ctx context.Context, key string, h broadcast.Handler) (broadcast.Link, broadcast.Attachment, error) {
	var none broadcast.Attachment
	if b.down.Load() {
		return nil, none, ErrUnavailable
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, attachTimeout)
		defer cancel()
	}
	l := newLink(b, key, h)
	at, err := l.attach(ctx)
	if err != nil {
		be := explain(err)
		b.trouble(be)
		return nil, none, fmt.Errorf("attach %s: %w", key, be)
	}
	b.answered()
	if b.health.runID.Load() == nil {
		b.learnRunID(ctx)
	}
	if !b.add(l) {
		l.leave()
		return nil, none, ErrUnavailable
	}
	b.wg.Add(1)
	go l.run()
	return l, at, nil
}

// add registers a link, unless the bus is closing.
func (b *Bus) add(l *link) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.closing:
		return false
	default:
	}
	b.links[l] = struct{}{}
	return true
}

// remove forgets a link that has ended.
func (b *Bus) remove(l *link) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.links, l)
}

// Close closes every link, waits until each has left its stream (a second
// each at most) and the prober has stopped, and closes the connections.
func (b *Bus) Close() error {
	b.mu.Lock()
	select {
	case <-b.closing:
		b.mu.Unlock()
		return nil
	default:
	}
	close(b.closing)
	links := make([]*link, 0, len(b.links))
	for l := range b.links {
		links = append(links, l)
	}
	b.mu.Unlock()
	for _, l := range links {
		l.Close()
	}
	b.wg.Wait()
	return b.rdb.Close()
}

// keys are the names of one stream's keys and channels.
type keys struct {
	lease, fence, epoch, seq, replay, present, input, inbytes, out, in string
}

// braces escapes what would end a hash tag early.
var braces = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func keysFor(stream string) keys {
	p := "wsgate:{" + braces.Replace(stream) + "}:"
	return keys{
		lease:   p + "lease",
		fence:   p + "fence",
		epoch:   p + "epoch",
		seq:     p + "seq",
		replay:  p + "replay",
		present: p + "present",
		input:   p + "input",
		inbytes: p + "inbytes",
		out:     p + "out",
		in:      p + "in",
	}
}

// libraryLog passes go-redis's log lines to slog at debug level.
type libraryLog struct{ log *slog.Logger }

func (l libraryLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("redis client: " + fmt.Sprintf(format, v...))
}
