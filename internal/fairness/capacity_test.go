package fairness

import (
	"errors"
	"testing"
)

// What a refused reservation took is given back at once, and what a held
// one took is given back once however often it is released.
func TestCapacityIsGivenBackExactlyOnce(t *testing.T) {
	t.Parallel()
	c := &Capacity{Conns: NewLimit(2), Forks: NewLimit(1), PerAddress: NewCounter(1)}
	first, err := c.Reserve("192.0.2.1:1000", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reserve("192.0.2.1:1001", false); !errors.Is(err, ErrTooManyFromAddress) {
		t.Fatalf("a second connection from one address: %v, want ErrTooManyFromAddress", err)
	}
	if _, err := c.Reserve("192.0.2.2:1000", true); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a second child: %v, want ErrTooMany", err)
	}
	// Neither refusal kept its connection slot or its address's.
	second, err := c.Reserve("192.0.2.3:1000", false)
	if err != nil {
		t.Fatalf("after two refusals: %v", err)
	}
	first.Release()
	first.Release()
	second.Release()
	var nilHeld *Held
	nilHeld.Release()
	if c.PerAddress.Addresses() != 0 {
		t.Errorf("%d addresses still hold slots", c.PerAddress.Addresses())
	}
	for range 2 {
		if !c.Conns.Acquire() {
			t.Fatal("a connection slot was not given back")
		}
	}
	if c.Conns.Acquire() {
		t.Error("a double release gave back more connection slots than were taken")
	}
	if !c.Forks.Acquire() || c.Forks.Acquire() {
		t.Error("the child slot was not given back exactly once")
	}
}
