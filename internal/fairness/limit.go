package fairness

// Limit counts what runs at once against a maximum: children, connections.
// Its methods are safe for concurrent use.
type Limit struct {
	slots chan struct{} // nil when unlimited
}

// NewLimit returns a limit of max at once; 0 or less is unlimited.
func NewLimit(max int) *Limit {
	if max <= 0 {
		return &Limit{}
	}
	return &Limit{slots: make(chan struct{}, max)}
}

// Acquire takes a slot, and reports false when none is free.
func (f *Limit) Acquire() bool {
	if f.slots == nil {
		return true
	}
	select {
	case f.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// Release gives a slot back.
func (f *Limit) Release() {
	if f.slots != nil {
		<-f.slots
	}
}
