package readiness

import "sync"

// A Lazy is a Set made when first asked for, so that a program that never
// needs one holds none, and closed once: a gateway's set of broadcast
// members. Its methods are safe for concurrent use.
type Lazy struct {
	// New makes the set; NewSet when nil.
	New func() (*Set, error)

	mu  sync.Mutex
	set *Set
}

// Get returns the set, made by the first call.
func (l *Lazy) Get() (*Set, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.set == nil {
		newSet := l.New
		if newSet == nil {
			newSet = NewSet
		}
		set, err := newSet()
		if err != nil {
			return nil, err
		}
		l.set = set
	}
	return l.set, nil
}

// Close stops the set, if one was made; the next Get makes another.
func (l *Lazy) Close() {
	l.mu.Lock()
	set := l.set
	l.set = nil
	l.mu.Unlock()
	if set != nil {
		set.Close()
	}
}
