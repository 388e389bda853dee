package fairness

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestKeyOf_CountsIPv6PerSlash64AndIPv4PerAddress(t *testing.T) {
	t.Parallel()
	same := [][2]string{
		{"192.0.2.1:1000", "192.0.2.1:2000"},
		{"192.0.2.1", "192.0.2.1:80"},
		{"[::ffff:192.0.2.1]:5", "192.0.2.1:6"},
		{"[2001:db8:1:2::1]:443", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:80"},
		{"2001:db8:1:2::1", "[2001:db8:1:2::7]:1"},
		{"[fe80::1%eth0]:1", "[fe80::2]:2"},
		{"@", "unix"},
	}
	for _, pair := range same {
		if a, b := KeyOf(pair[0]), KeyOf(pair[1]); a != b {
			t.Errorf("%s and %s counted apart (%v, %v)", pair[0], pair[1], a, b)
		}
	}
	apart := [][2]string{
		{"192.0.2.1:1", "192.0.2.2:1"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1"},
		{"192.0.2.1:1", "@"},
	}
	for _, pair := range apart {
		if KeyOf(pair[0]) == KeyOf(pair[1]) {
			t.Errorf("%s and %s counted together", pair[0], pair[1])
		}
	}
	if got := KeyOf("[2001:db8:1:2::1]:1").String(); got != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 key = %q, want the /64", got)
	}
	if got := KeyOf("192.0.2.1:1").String(); got != "192.0.2.1" {
		t.Errorf("IPv4 key = %q", got)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ now time.Time }

func (c *fakeClock) read() time.Time         { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }
func newLimiter(rate float64, max int) (*RateLimiter, *fakeClock) {
	c := &fakeClock{now: time.Unix(1_000_000, 0)}
	l := NewRateLimiter(rate, max)
	l.clock = c.read
	return l, c
}

func TestRateLimiter_AllowsABurstOfRateThenOnePerInterval(t *testing.T) {
	t.Parallel()
	l, clock := newLimiter(5, 0)
	k := KeyOf("192.0.2.1:1")
	for i := range 5 {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("handshake %d of a new address's burst refused", i+1)
		}
	}
	ok, wait := l.Allow(k)
	if ok || wait != 200*time.Millisecond {
		t.Fatalf("sixth handshake: allowed %v, wait %v; want refused, 200ms", ok, wait)
	}
	if ok, _ := l.Allow(KeyOf("192.0.2.2:1")); !ok {
		t.Fatal("another address was refused: buckets are per address")
	}
	clock.advance(200 * time.Millisecond)
	if ok, _ := l.Allow(k); !ok {
		t.Fatal("refused after the bucket gained a token")
	}
	if ok, _ := l.Allow(k); ok {
		t.Fatal("allowed twice after one token's time")
	}
	clock.advance(time.Hour)
	for i := range 5 {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("after an hour, handshake %d refused: the bucket holds only rate tokens, but all of them", i+1)
		}
	}
	if ok, _ := l.Allow(k); ok {
		t.Fatal("an hour's wait gave more than a burst")
	}
}

func TestRateLimiter_RetryAfterIsBounded(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(0.01, 0) // one per 100 s
	k := KeyOf("192.0.2.1:1")
	if ok, _ := l.Allow(k); !ok {
		t.Fatal("first handshake refused: a rate below one still allows one")
	}
	if ok, wait := l.Allow(k); ok || wait != MaxRetryAfter {
		t.Fatalf("second: allowed %v wait %v, want refused with %v", ok, wait, MaxRetryAfter)
	}
}

func TestRateLimiter_TableIsBoundedAndForgetsRefilledAddressesFirst(t *testing.T) {
	t.Parallel()
	const max = 64
	l, clock := newLimiter(2, max)
	limited := KeyOf("198.51.100.1:1")
	l.Allow(limited)
	l.Allow(limited) // empty now
	for i := range 10 * max {
		l.Allow(KeyOf(fmt.Sprintf("[2001:db8:%x::1]:1", i)))
		if n := l.Len(); n > max {
			t.Fatalf("table holds %d addresses, bound %d", n, max)
		}
	}
	// Every address so far was limited a moment ago. Once their buckets
	// have refilled, the sweep a full table makes forgets them all, and
	// keeps those added since, which are still being limited.
	clock.advance(time.Second)
	added := max - l.Len() + 1
	for i := range added {
		l.Allow(KeyOf(fmt.Sprintf("203.0.113.%d:1", i)))
	}
	if n := l.Len(); n != added {
		t.Fatalf("after every old bucket refilled, the table holds %d, want the %d added since", n, added)
	}
}

func TestRateLimiter_ConcurrentUse(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(100, 16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.Allow(KeyOf(fmt.Sprintf("10.0.%d.%d:1", g, i%50)))
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 16 {
		t.Fatalf("table holds %d, bound 16", n)
	}
}

func TestCounter_LimitsEachAddressAndForgetsItWhenNothingIsHeld(t *testing.T) {
	t.Parallel()
	c := NewCounter(2)
	a, b := KeyOf("192.0.2.1:1"), KeyOf("[2001:db8::1]:1")
	if !c.Acquire(a) || !c.Acquire(a) {
		t.Fatal("the first two of an address refused")
	}
	if c.Acquire(a) {
		t.Fatal("a third allowed with a maximum of 2")
	}
	if !c.Acquire(b) {
		t.Fatal("another address refused")
	}
	if !c.Acquire(KeyOf("[2001:db8::2]:9")) || c.Acquire(KeyOf("[2001:db8::3]:9")) {
		t.Fatal("the same /64 is not counted as one address")
	}
	c.Release(a)
	if !c.Acquire(a) {
		t.Fatal("a released slot was not given back")
	}
	c.Release(a)
	c.Release(a)
	c.Release(b)
	c.Release(b)
	if n := c.Addresses(); n != 0 {
		t.Fatalf("%d addresses remembered with nothing held", n)
	}
}

func TestRetryAfterIsWholeSecondsOneAtLeast(t *testing.T) {
	t.Parallel()
	for wait, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", 1500 * time.Millisecond: "2", 10 * time.Second: "10"} {
		if got := RetryAfter(wait); got != want {
			t.Errorf("RetryAfter(%v) = %q, want %q", wait, got, want)
		}
	}
}
