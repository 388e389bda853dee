package e2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testrun"
)

// Fencing (README "One process per stream"): a leader frozen past its
// lease gets no line of its process to anyone once another instance leads,
// and stops its process as soon as it runs again.

func TestFencing_AFrozenLeaderNeverGetsItsProcesssLinesToAClientOnceAnotherLeads(t *testing.T) {
	redis := testrun.StartRedis(t)
	args := []string{"--broadcast", "--bus=" + redis.URL(), "--replay=5000", writeScript(t, pacedScript)}
	a := startGateway(t, args...)
	onA := startResumer(t, a.url("/")) // the first client: a leads
	_, pid := waitOneChild(t, []*gatewayProc{a}, 2*time.Second)
	killGroupAtEnd(t, pid)
	b := startGateway(t, args...)
	onB := startResumer(t, b.url("/"))
	for _, r := range []*resumer{onA, onB} {
		r.waitLines(t, 50, 10*time.Second)
	}

	// Frozen for 6 s, twice the lease: b takes over after about 3.5 s,
	// while a's process, which is not frozen, keeps printing into its
	// pipe.
	a.stop(syscall.SIGSTOP)
	frozen := time.Now()
	_, newPid := waitOneChild(t, []*gatewayProc{b}, 10*time.Second) // about 3.5 s: the lease, then a tick
	killGroupAtEnd(t, newPid)
	onB.waitLines(t, 50, 10*time.Second) // b's process's lines, through b
	time.Sleep(6*time.Second - time.Since(frozen))
	a.stop(syscall.SIGCONT)
	woke := time.Now()

	// Running again, a stops its process at once, and delivers none of
	// what it printed meanwhile.
	waitGroupGone(t, pid, 3*time.Second)
	t.Logf("a's process was gone %v after a ran again", time.Since(woke).Round(time.Millisecond))
	// It says why: it finds the lease lost, or, when the call to Redis it
	// was making as it froze has timed out meanwhile, that the link failed
	// (a loaded run saw both). Either way its process is stopped.
	deadline := time.Now().Add(5 * time.Second)
	for !a.logsSay("lost the lead of the stream; stopping its process", 0) && !a.logsSay("bus link failed; ending the stream here", 0) {
		if time.Now().After(deadline) {
			t.Fatalf("a does not say why it stopped its process:\n%s", a.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range []*resumer{onA, onB} {
		r.waitLines(t, 100, 15*time.Second) // onA resumes, on a (now a relay)
	}

	// Every client saw one stream: the same line at each position, a's
	// producer and then b's, never back.
	seen := map[string]string{}
	for name, r := range map[string]*resumer{"a's client": onA, "b's client": onB} {
		r.halt()
		lines, conns, err := r.state()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(r.producers) != 2 || r.producers[0] != strconv.Itoa(pid) || r.producers[1] != strconv.Itoa(newPid) {
			t.Errorf("%s got lines from producers %v, want %d and then %d", name, r.producers, pid, newPid)
		}
		for id, line := range r.byID {
			if other, ok := seen[id]; ok && other != line {
				t.Fatalf("position %s is %q for one client and %q for another: two producers", id, other, line)
			}
			seen[id] = line
		}
		t.Logf("%s: %d lines over %d connections", name, lines, conns)
	}
	if strings.Contains(a.logs(), "DATA RACE") {
		t.Fatal("data race")
	}
}
