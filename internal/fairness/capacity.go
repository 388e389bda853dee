package fairness

import (
	"errors"
	"sync/atomic"
)

// Refusals of Capacity.Reserve.
var (
	// ErrTooMany: no connection slot, or no child slot, is free.
	ErrTooMany = errors.New("too many connections")
	// ErrTooManyFromAddress: the client's address holds all of its slots.
	ErrTooManyFromAddress = errors.New("too many connections from your address")
)

// Capacity is what a server's connections may hold at once: connection
// slots, slots per client address (nil: no such bound), and child slots.
type Capacity struct {
	Conns, Forks *Limit
	PerAddress   *Counter
}

// Held is what one connection holds of a Capacity. Whoever ends the
// connection releases it, exactly once, however it ends.
type Held struct {
	c        *Capacity
	fork     bool // holds a child slot too
	addr     *Key // the address whose slot it holds, if any
	released atomic.Bool
}

// Reserve takes a connection slot, one of addr's, and a child slot when
// fork is set, in that order. It returns what stopped it, ErrTooMany or
// ErrTooManyFromAddress, holding nothing then.
func (c *Capacity) Reserve(addr string, fork bool) (*Held, error) {
	if !c.Conns.Acquire() {
		return nil, ErrTooMany
	}
	held := &Held{c: c}
	if c.PerAddress != nil {
		key := KeyOf(addr)
		if !c.PerAddress.Acquire(key) {
			held.Release()
			return nil, ErrTooManyFromAddress
		}
		held.addr = &key
	}
	if fork {
		if !c.Forks.Acquire() {
			held.Release()
			return nil, ErrTooMany
		}
		held.fork = true
	}
	return held, nil
}

// Release gives back what h holds, the first time it is called. A nil Held
// holds nothing.
func (h *Held) Release() {
	if h == nil || !h.released.CompareAndSwap(false, true) {
		return
	}
	h.c.Conns.Release()
	if h.addr != nil {
		h.c.PerAddress.Release(*h.addr)
	}
	if h.fork {
		h.c.Forks.Release()
	}
}
