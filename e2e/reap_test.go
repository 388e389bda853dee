package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// zombieGrace is how long a child of wsgate may stay a zombie after it
// exited: the contract's "a moment", with room for a loaded machine.
const zombieGrace = time.Second

// Processes that left their group with setsid are out of the stop
// sequence's reach and outlive their session; orphaned to wsgate (the
// subreaper), they become its zombies when they exit, and it must reap them
// then, not whenever some other session happens to end.
func TestReap_SetsidEscapeesAreReapedAsSoonAsTheyExit(t *testing.T) {
	testrun.LinuxOnlyPromise(t, "the child subreaper reaps escapees")
	t.Parallel()
	const escapees = 25
	// Each escapee sleeps 40 ms longer than the one before (1 s to 1.96 s),
	// so that they exit one by one.
	script := writeScript(t, `i=0; while [ $i -lt `+strconv.Itoa(escapees)+` ]; do
		setsid sleep $(printf '1.%02d' $((i*4))) & echo $!; i=$((i+1)); done`)
	g := startGateway(t, script)
	conn := dial(t, g.url("/"))
	msgs := expectClose(t, conn, websocket.CloseNormalClosure, "exit status 0")
	if len(msgs) != escapees {
		t.Fatalf("the script printed %q, want %d pids", msgs, escapees)
	}
	pids := map[int]bool{}
	for _, m := range msgs {
		pid, err := strconv.Atoi(m)
		if err != nil {
			t.Fatalf("%q is not a pid", m)
		}
		pids[pid] = true
	}
	watchZombies(t, g.pid(), pids, 15*time.Second)
}

// watchZombies follows the children of ppid until every pid in pids is gone
// (at most timeout), and fails the test if any child of ppid, one of pids or
// not, stays a zombie for longer than zombieGrace.
func watchZombies(t *testing.T, ppid int, pids map[int]bool, timeout time.Duration) {
	t.Helper()
	firstSeen := map[int]time.Time{} // when each zombie was first seen
	deadline := time.Now().Add(timeout)
	for {
		left, now := 0, time.Now()
		for _, p := range testrun.Processes() {
			if pids[p.Pid] {
				left++
			}
			if p.PPid != ppid || p.State != "Z" {
				continue
			}
			if _, ok := firstSeen[p.Pid]; !ok {
				firstSeen[p.Pid] = now
			}
			if stayed := now.Sub(firstSeen[p.Pid]); stayed > zombieGrace {
				t.Fatalf("pid %d (%s) has been a zombie of wsgate for %v, want it reaped within %v", p.Pid, p.Comm, stayed.Round(time.Millisecond), zombieGrace)
			}
		}
		if left == 0 {
			t.Logf("%d zombies seen, none for more than %v", len(firstSeen), zombieGrace)
			return
		}
		if now.After(deadline) {
			t.Fatalf("%d of %d escapees still there after %v", left, len(pids), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
