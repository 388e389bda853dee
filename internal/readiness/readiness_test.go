//go:build unix

package readiness

import (
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventWait bounds how long a test waits for a callback that must come;
// noEventWait is how long it watches for one that must not.
const (
	eventWait   = 10 * time.Second
	noEventWait = 200 * time.Millisecond
)

// pair returns both ends of a loopback TCP connection; they are closed at
// the end of the test.
func pair(t *testing.T) (ours, peer net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ours, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ours.Close(); peer.Close() })
	return ours, peer
}

func rawConn(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newSet(t *testing.T) *Set {
	t.Helper()
	s, err := NewSet()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// armed watches c in s, armed, with ready as its callback.
func armed(t *testing.T, s *Set, c net.Conn, ready func()) *Watch {
	t.Helper()
	w := s.Watch(rawConn(t, c), ready)
	if err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	return w
}

// signal returns a callback that sends on the channel it returns.
func signal() (func(), chan struct{}) {
	ch := make(chan struct{}, 16)
	return func() { ch <- struct{}{} }, ch
}

func expect(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(eventWait):
		t.Fatalf("no callback %s within %v", what, eventWait)
	}
}

func expectNone(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("a callback %s", what)
	case <-time.After(noEventWait):
	}
}

func TestArmedWatchRunsOnceWhenDataComesAndAgainOnlyOnceArmedAgain(t *testing.T) {
	s := newSet(t)
	ours, peer := pair(t)
	ready, ch := signal()
	w := armed(t, s, ours, ready)
	expectNone(t, ch, "before any data")

	peer.Write([]byte("a"))
	expect(t, ch, "for data")
	peer.Write([]byte("b"))
	expectNone(t, ch, "while not armed again")

	// Unread data is there at once when armed again.
	if err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "for data left unread")

	buf := make([]byte, 8)
	if n, err := ours.Read(buf); err != nil || n != 2 {
		t.Fatalf("read %d, %v; want the 2 bytes", n, err)
	}
	if err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, ch, "with everything read")
}

func TestWatchRunsWhenThePeerHangsUp(t *testing.T) {
	s := newSet(t)
	ours, peer := pair(t)
	ready, ch := signal()
	armed(t, s, ours, ready)
	peer.Close()
	expect(t, ch, "for the peer's close")
}

func TestManySocketsEachGetTheirOwnCallback(t *testing.T) {
	s := newSet(t)
	const n = 300 // past one epoll_wait's worth
	peers := make([]net.Conn, n)
	var fired [n]atomic.Int32
	all := make(chan struct{}, n)
	for i := range n {
		ours, peer := pair(t)
		peers[i] = peer
		armed(t, s, ours, func() {
			fired[i].Add(1)
			all <- struct{}{}
		})
	}
	for _, p := range peers {
		p.Write([]byte("x"))
	}
	for range n {
		expect(t, all, "for each socket")
	}
	expectNone(t, all, "more than once per socket")
	for i := range n {
		if got := fired[i].Load(); got != 1 {
			t.Errorf("socket %d: callback ran %d times, want 1", i, got)
		}
	}
}

func TestFireRunsAnArmedWatchOnceAndADisarmedOneNever(t *testing.T) {
	s := newSet(t)
	ours, _ := pair(t)
	ready, ch := signal()
	w := s.Watch(rawConn(t, ours), ready)
	w.Fire()
	expectNone(t, ch, "for Fire before Arm")

	if err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	// The socket is closed, as a dropped client's is: the kernel forgets
	// it, and only Fire can tell its reader.
	ours.Close()
	w.Fire()
	expect(t, ch, "for Fire on an armed watch")
	w.Fire()
	expectNone(t, ch, "for a second Fire")

	if err := w.Arm(); err == nil {
		t.Fatal("Arm on a closed socket succeeded")
	}
}

func TestRemovedWatchNeverRuns(t *testing.T) {
	s := newSet(t)
	ours, peer := pair(t)
	ready, ch := signal()
	w := armed(t, s, ours, ready)
	w.Remove()
	w.Remove()
	peer.Write([]byte("x"))
	w.Fire()
	expectNone(t, ch, "after Remove")
	if err := w.Arm(); err != ErrRemoved {
		t.Fatalf("Arm after Remove: %v, want ErrRemoved", err)
	}
	s.mu.Lock()
	left := len(s.watches)
	s.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d watches left in the set", left)
	}
}

func TestCloseStopsTheDispatcher(t *testing.T) {
	s, err := NewSet()
	if err != nil {
		t.Fatal(err)
	}
	ours, peer := pair(t)
	ready, ch := signal()
	armed(t, s, ours, ready)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	peer.Write([]byte("x"))
	expectNone(t, ch, "after Close")
	// goleak, in TestMain, fails the package if the dispatcher is left.
}
