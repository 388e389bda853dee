package fairness

import "sync"

// Counter counts what each address holds open against a maximum. An
// address is in its table only while it holds something, so the table is
// no bigger than what is open.
type Counter struct {
	max int

	mu     sync.Mutex
	counts map[Key]int
}

// NewCounter returns a counter allowing max per address (max > 0).
func NewCounter(max int) *Counter {
	return &Counter{max: max, counts: make(map[Key]int)}
}

// Acquire counts one more for k and reports true, unless k holds the
// maximum already.
func (c *Counter) Acquire(k Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[k] >= c.max {
		return false
	}
	c.counts[k]++
	return true
}

// Release counts one less for k; call it once for each Acquire that
// reported true.
func (c *Counter) Release(k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.counts[k]; n > 1 {
		c.counts[k] = n - 1
	} else {
		delete(c.counts, k)
	}
}

// Held returns how many k holds.
func (c *Counter) Held(k Key) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[k]
}

// Addresses returns how many addresses hold something.
func (c *Counter) Addresses() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts)
}
