package fairness

import (
	"math"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxAddresses bounds a RateLimiter's table when New is given 0.
const DefaultMaxAddresses = 65536

// MaxRetryAfter is the longest wait a RateLimiter asks for: a client told to
// come back much later would rather give up, and the bucket refills in
// about a second anyway.
const MaxRetryAfter = 10 * time.Second

// RateLimiter allows each address rate events per second, in bursts of up
// to rate, one at least (a token bucket per address; a new address starts
// with a full one). Its table of addresses is bounded: an address whose bucket has
// refilled is as good as unknown, so it is forgotten first; when every
// address in a full table is still being limited, some are forgotten at
// random, which lets them start afresh rather than shutting out new ones.
type RateLimiter struct {
	rate  float64 // tokens per second
	burst float64 // the bucket's size
	max   int     // most addresses kept
	clock func() time.Time

	mu      sync.Mutex
	buckets map[Key]*bucket
}

// bucket is one address's tokens as of when they were counted.
type bucket struct {
	tokens float64
	at     time.Time
}

// NewRateLimiter returns a limiter of rate events per second per address
// (rate > 0), keeping at most maxAddresses addresses (DefaultMaxAddresses
// when 0).
func NewRateLimiter(rate float64, maxAddresses int) *RateLimiter {
	if maxAddresses <= 0 {
		maxAddresses = DefaultMaxAddresses
	}
	return &RateLimiter{rate: rate, burst: math.Max(1, rate), max: maxAddresses, clock: time.Now, buckets: make(map[Key]*bucket)}
}

// Allow takes a token of k's bucket and reports true, or, when the bucket
// is empty, reports false and how long until it holds one (at most
// MaxRetryAfter).
func (l *RateLimiter) Allow(k Key) (bool, time.Duration) {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[k]
	if b == nil {
		l.makeRoom(now)
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[k] = b
	}
	b.tokens = l.refilled(b, now)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, min(wait, MaxRetryAfter)
}

// refilled is how many tokens b holds at now.
func (l *RateLimiter) refilled(b *bucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
}

// makeRoom makes room for one more address in a full table: it forgets
// every address whose bucket has refilled, and if none has, an eighth of
// the table, so that the next sweep is that far off.
func (l *RateLimiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.max {
		return
	}
	for k, b := range l.buckets {
		if l.refilled(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets { // map order: an arbitrary choice
		if len(l.buckets) < l.max-l.max/8 {
			break
		}
		delete(l.buckets, k)
	}
}

// Len returns how many addresses the limiter remembers.
func (l *RateLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// RetryAfter is a Retry-After value for wait, in whole seconds, one at
// least.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}
