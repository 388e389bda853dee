package process

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testrun"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testrun.ProcessGoroutines...)
}

// loadSlack is what a loaded machine may add to a bound: the bounds are the
// stop sequence's own; their upper ends only catch a sequence that stalls.
const loadSlack = 3 * time.Second

// recorder is a writer Feed passes output to; the test reads it meanwhile.
type recorder struct {
	testrun.Buffer
	mu      sync.Mutex
	flushes int
	closed  bool
}

func (r *recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushes++
	return nil
}

func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recorder) flushCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushes
}

// waitFor waits until the output holds want, or fails the test.
func (r *recorder) waitFor(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output has no %q within %v: %q", want, within, r.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// child is a started process whose output a Feed goroutine records.
type child struct {
	*Process
	stdout, stderr *recorder
	fed            chan Status // Feed's result
}

// start runs sh -c script, feeds its output to recorders, and registers a
// cleanup that kills it and checks that nothing of its group is left.
func start(t *testing.T, script string, grace time.Duration) *child {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	return startSpec(t, Spec{Path: sh, Args: []string{"-c", script}, Env: []string{"PATH=" + os.Getenv("PATH")}, Grace: grace})
}

func startSpec(t *testing.T, spec Spec) *child {
	t.Helper()
	p, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{Process: p, stdout: &recorder{}, stderr: &recorder{}, fed: make(chan Status, 1)}
	go func() { c.fed <- p.Feed(c.stdout, c.stderr) }()
	t.Cleanup(func() {
		p.Kill()
		<-p.Done()
		assertGroupGone(t, p.Pid())
	})
	return c
}

// groupMembers lists the processes of group pgid, zombies included.
func groupMembers(pgid int) []testrun.Proc { return testrun.GroupMembers(pgid) }

func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	if testrun.PortableBackend {
		// Killed, but not reaped by us: they are gone once they have died
		// and init has reaped them.
		testrun.WaitGroupGone(t, pgid, loadSlack)
		return
	}
	if left := groupMembers(pgid); len(left) > 0 {
		t.Errorf("process group %d still has %v", pgid, left)
	}
}

// finish waits for Feed to return, bounded, and returns what stdout held.
func (c *child) finish(t *testing.T, within time.Duration) (stdout string, took time.Duration) {
	t.Helper()
	begin := time.Now()
	select {
	case status := <-c.fed:
		if status != c.Status() {
			t.Errorf("Feed returned %v, Status says %v", status, c.Status())
		}
	case <-time.After(within):
		t.Fatalf("child not done within %v", within)
	}
	return c.stdout.String(), time.Since(begin)
}

func TestExitStatusIsReported(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, script, want string
		success            bool
	}{
		{"exit-0", "exit 0", "exit status 0", true},
		{"exit-3", "exit 3", "exit status 3", false},
		{"killed-by-TERM", "kill -TERM $$", "signal: terminated", false},
		{"killed-by-KILL", "kill -KILL $$", "signal: killed", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, c.script, 0)
			p.finish(t, 5*time.Second)
			if got := p.Status(); got.String() != c.want || got.Success() != c.success {
				t.Errorf("status = %q (success %v), want %q (success %v)", got, got.Success(), c.want, c.success)
			}
		})
	}
}

func TestOutputIsDeliveredWhole(t *testing.T) {
	t.Parallel()
	p := start(t, "read line; echo \"got $line\"; printf 'no newline'", 0)
	if _, err := io.WriteString(p.Stdin(), "hello\n"); err != nil {
		t.Fatal(err)
	}
	out, _ := p.finish(t, 5*time.Second)
	if want := "got hello\nno newline"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if !p.stdout.closed {
		t.Error("stdout's writer was not closed at the end of the output")
	}
}

func TestEnvironmentIsOnlyWhatIsGiven(t *testing.T) {
	t.Setenv("WSGATE_CANARY", "leaked")
	p := startSpec(t, Spec{Path: "/usr/bin/env", Env: []string{"A=1", "B=two words"}})
	out, _ := p.finish(t, 5*time.Second)
	if want := "A=1\nB=two words\n"; out != want {
		t.Errorf("env = %q, want %q", out, want)
	}
}

func TestStartFailsForMissingProgram(t *testing.T) {
	t.Parallel()
	_, err := Start(Spec{Path: "/nonexistent/program"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/program") {
		t.Fatalf("err = %v, want one naming the program", err)
	}
}

// The stop sequence, scenario by scenario: how the child reacts decides which
// step ends it, and every step is bounded.
func TestStopSequence(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		script     string
		grace      time.Duration
		wantStatus string
		min        time.Duration // the step that must come first
	}{
		// cat ends at the end of its input; the grace gives a loaded
		// machine time to run it before SIGINT would.
		{"stdin-close-ends-cat", "echo ready; exec cat", 2 * time.Second, "exit status 0", 0},
		{"SIGINT-ends-it", "echo ready; exec sleep 30", 0, "signal: interrupt", stdinCloseWait},
		{"SIGINT-ignored", "trap '' INT; echo ready; exec sleep 30", 0, "signal: terminated", stdinCloseWait + interruptWait},
		{"SIGINT-and-SIGTERM-ignored", "trap '' INT TERM; echo ready; exec sleep 30", 0, "signal: killed", StopBound(0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, c.script, c.grace)
			p.stdout.waitFor(t, "ready\n", 5*time.Second) // its traps are set
			begin := time.Now()
			p.Stop()
			<-p.Done()
			took := time.Since(begin)
			if got := p.Status().String(); got != c.wantStatus {
				t.Errorf("status = %q, want %q", got, c.wantStatus)
			}
			// The lower bound is the point: an earlier signal is a wrong
			// sequence. The upper one only catches a sequence that stalls.
			if took < c.min || took > c.min+loadSlack {
				t.Errorf("stop took %v, want %v plus a little", took, c.min)
			}
			assertGroupGone(t, p.Pid())
		})
	}
}

func TestStopGraceIsAddedToEachStep(t *testing.T) {
	t.Parallel()
	const grace = 200 * time.Millisecond
	p := start(t, "trap '' INT TERM; echo ready; exec sleep 30", grace)
	p.stdout.waitFor(t, "ready\n", 5*time.Second) // its traps are set
	begin := time.Now()
	p.Stop()
	<-p.Done()
	if took, min := time.Since(begin), StopBound(grace); took < min || took > min+loadSlack {
		t.Errorf("stop took %v, want about %v", took, min)
	}
	if StopBound(grace) != 850*time.Millisecond+3*grace {
		t.Errorf("StopBound(%v) = %v, want the three steps plus three graces", grace, StopBound(grace))
	}
}

func TestStopReachesGrandchildren(t *testing.T) {
	t.Parallel()
	// The grandchildren ignore SIGINT and SIGTERM and do not hold the pipes;
	// the leader dies on SIGINT. The sweep must still take them.
	p := start(t, "(trap '' INT TERM; exec sleep 30) >/dev/null 2>&1 & (trap '' INT TERM; exec sleep 31) >/dev/null 2>&1 & echo ready; wait", 0)
	p.stdout.waitFor(t, "ready\n", 5*time.Second)
	if n := len(groupMembers(p.Pid())); n != 3 {
		t.Fatalf("group has %d members before Stop, want 3", n)
	}
	p.Stop()
	<-p.Done()
	assertGroupGone(t, p.Pid())
}

func TestGrandchildHoldingStdoutCannotHoldTheChild(t *testing.T) {
	t.Parallel()
	// The leader exits at once; a grandchild that ignores SIGINT keeps stdout
	// open. The output must still end, after SIGTERM reaches the group.
	p := start(t, "(trap '' INT; echo from-grandchild; exec sleep 30) & sleep 0.05; echo leader-done", 0)
	out, took := p.finish(t, 10*time.Second)
	if !strings.Contains(out, "from-grandchild\n") || !strings.Contains(out, "leader-done\n") {
		t.Errorf("stdout = %q, want both lines", out)
	}
	if took > StopBound(0)+loadSlack {
		t.Errorf("output ended after %v, want within the stop sequence", took)
	}
	if got := p.Status().String(); got != "exit status 0" {
		t.Errorf("status = %q, want the leader's own exit status 0", got)
	}
	assertGroupGone(t, p.Pid())
}

func TestEscapedGrandchildCannotHoldTheOutput(t *testing.T) {
	t.Parallel()
	// setsid leaves the group, so no signal of ours reaches it; it keeps
	// stdout open. Feed must still end once SIGKILL has gone to the group.
	p := start(t, "setsid sh -c 'echo $$; exec sleep 30' & sleep 0.1", 0)
	out, took := p.finish(t, 10*time.Second)
	if took > StopBound(0)+loadSlack {
		t.Errorf("output ended after %v, want within the stop sequence", took)
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(out)); err == nil {
		syscall.Kill(pid, syscall.SIGKILL) // ours to clean up: it escaped on purpose
	} else {
		t.Errorf("stdout = %q, want the escaped pid", out)
	}
}

func TestEscapeeIsReapedOnceItHasExited(t *testing.T) {
	testrun.LinuxOnlyPromise(t, "the child subreaper reaps escapees")
	// Not parallel: waitid tells of one exited child at a time, and another
	// test's child, exited but not yet collected by its Feed, would hide the
	// escapee from the sweeps below for a while.
	p := start(t, "setsid sh -c 'echo $$; exec sleep 0.2' & sleep 0.05", 0)
	out, _ := p.finish(t, 10*time.Second)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("stdout = %q, want the escaped pid", out)
	}
	// Orphaned to us, it becomes our zombie when it exits; the next sweep,
	// any child's, must reap it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := groupMembers(pid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("escaped process still there 3 s later: %+v", left)
		}
		start(t, "true", 0).finish(t, 10*time.Second)
		time.Sleep(50 * time.Millisecond)
	}
}

func TestChildThatNeverReadsStdinCanBeStopped(t *testing.T) {
	t.Parallel()
	p := start(t, "exec sleep 30", 0)
	written := make(chan error, 1)
	go func() {
		// Far more than a pipe holds: this write blocks until Stop closes stdin.
		_, err := p.Stdin().Write(make([]byte, 4<<20))
		written <- err
	}()
	time.Sleep(50 * time.Millisecond)
	p.Stop()
	select {
	case err := <-written:
		if err == nil {
			t.Error("write to a child that never reads succeeded")
		}
	case <-time.After(StopBound(0) + loadSlack):
		t.Fatal("write still blocked after Stop")
	}
	<-p.Done()
}

func TestStopIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	p := start(t, "exec cat", 0)
	done := make(chan struct{})
	for range 4 {
		go func() {
			p.Stop()
			<-p.Done()
			done <- struct{}{}
		}()
	}
	for range 4 {
		select {
		case <-done:
		case <-time.After(StopBound(0) + loadSlack):
			t.Fatal("Done not closed after Stop")
		}
	}
	if got := p.Status().String(); got != "exit status 0" {
		t.Errorf("status = %q", got)
	}
}

func TestKillEndsTheGroupAtOnce(t *testing.T) {
	t.Parallel()
	p := start(t, "trap '' INT TERM; sleep 30 & exec sleep 31", 0)
	time.Sleep(50 * time.Millisecond)
	begin := time.Now()
	p.Kill()
	<-p.Done()
	if took := time.Since(begin); took > stdinCloseWait {
		t.Errorf("Kill took %v, want less than the stop sequence's first step", took)
	}
	if got := p.Status().String(); got != "signal: killed" {
		t.Errorf("status = %q, want signal: killed", got)
	}
	assertGroupGone(t, p.Pid())
}

func TestStderrGoesToItsWriterWithoutStallingTheChild(t *testing.T) {
	t.Parallel()
	// 1 MiB on stderr before stdout: a feeder that did not drain stderr
	// would leave the child blocked and stdout empty.
	p := start(t, "head -c 1048576 /dev/zero | tr '\\0' e >&2; printf tail >&2; echo out", 0)
	out, _ := p.finish(t, 5*time.Second)
	if out != "out\n" {
		t.Errorf("stdout = %q", out)
	}
	if want := strings.Repeat("e", 1<<20) + "tail"; p.stderr.String() != want || !p.stderr.closed {
		t.Errorf("stderr's writer got %d bytes (closed %v), want %d and closed", len(p.stderr.String()), p.stderr.closed, len(want))
	}
}

func TestEndOfStdoutStopsTheChild(t *testing.T) {
	t.Parallel()
	// The child closes stdout and would then sleep: the end of its output
	// must stop it (stdin closed, then SIGINT), as websocketd does.
	p := start(t, "echo one; sleep 0.1; printf two; exec >&-; exec sleep 30", 0)
	out, _ := p.finish(t, 10*time.Second)
	if out != "one\ntwo" || !p.stdout.closed || p.stdout.flushCount() < 1 {
		t.Errorf("stdout's writer got %q (closed %v, %d flushes), want the first write flushed and a close", out, p.stdout.closed, p.stdout.flushCount())
	}
	if got := p.Status().String(); got != "signal: interrupt" {
		t.Errorf("status %q, want the SIGINT of the stop sequence", got)
	}
	assertGroupGone(t, p.Pid())
}

func TestWakeFlushesStdoutsWriterWhileTheChildIsQuiet(t *testing.T) {
	t.Parallel()
	p := start(t, "echo ready; exec sleep 30", 0)
	p.stdout.waitFor(t, "ready\n", 5*time.Second)
	before := p.stdout.flushCount()
	p.Wake()
	deadline := time.Now().Add(loadSlack)
	for p.stdout.flushCount() == before {
		if time.Now().After(deadline) {
			t.Fatal("Wake did not flush stdout's writer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Stop()
	<-p.Done()
}

func TestNilWritersDropTheOutput(t *testing.T) {
	t.Parallel()
	sh, _ := exec.LookPath("sh")
	p, err := Start(Spec{Path: sh, Args: []string{"-c", "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Status, 1)
	go func() { done <- p.Feed(nil, nil) }()
	select {
	case status := <-done:
		if !status.Success() {
			t.Errorf("status = %v", status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("child stalled on output nobody took")
	}
}

// failingWriter takes nothing: a client that is gone or closing.
type failingWriter struct{ writes atomic.Int64 }

func (w *failingWriter) Write([]byte) (int, error) {
	w.writes.Add(1)
	return 0, io.ErrClosedPipe
}

// cpuTicks returns the user and system time pid has used, in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return utime + stime
}

// Once stdout's writer has failed, Feed stops reading it until the stop
// sequence signals the group: a child that prints without pause then
// blocks on its full pipe instead of running flat out, and gets its signal
// as usual. (Drained and dropped, yes used a whole core until its SIGINT,
// which at a shutdown with many such children starved wsgate.)
func TestOutputIsHeldOnceItsWriterHasFailed(t *testing.T) {
	t.Parallel()
	yes, err := exec.LookPath("yes")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(Spec{Path: yes, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out := &failingWriter{}
	done := make(chan Status, 1)
	go func() { done <- p.Feed(out, nil) }()
	t.Cleanup(func() { p.Kill(); <-p.Done() })

	time.Sleep(200 * time.Millisecond) // the pipe fills, the child blocks
	before := cpuTicks(t, p.Pid())
	time.Sleep(time.Second)
	if used := cpuTicks(t, p.Pid()) - before; used > 10 {
		t.Errorf("the child used %d ticks of CPU in 1 s after its output's writer failed, want it blocked", used)
	}
	if n := out.writes.Load(); n != 1 {
		t.Errorf("the failed writer was called %d times, want once", n)
	}
	begin := time.Now()
	p.Stop()
	select {
	case status := <-done:
		if got := status.String(); got != "signal: interrupt" {
			t.Errorf("status = %q, want the stop sequence's SIGINT", got)
		}
	case <-time.After(StopBound(time.Second) + 5*time.Second):
		t.Fatalf("Feed did not return %v after Stop", time.Since(begin))
	}
}

// startReaper runs a Reaper until the test ends.
func startReaper(t *testing.T) {
	t.Helper()
	r := StartReaper()
	t.Cleanup(r.Stop)
}

// A Reaper reaps the processes that left their group with setsid as soon
// as they exit, without any sweep: none stays a zombie for more than a
// moment.
func TestReaperReapsEscapeesAsTheyExit(t *testing.T) {
	testrun.LinuxOnlyPromise(t, "the child subreaper reaps escapees")
	// Not parallel: other tests' exited children, not yet collected by
	// their Feed, would hide the escapees for a moment (reapEscapees).
	startReaper(t)
	p := start(t, `i=0; while [ $i -lt 25 ]; do setsid sleep $(printf '0.%02d' $((20+i*2))) & echo $!; i=$((i+1)); done`, 0)
	out, _ := p.finish(t, 10*time.Second)
	pids := strings.Fields(out)
	if len(pids) != 25 {
		t.Fatalf("stdout = %q, want 25 pids", out)
	}
	zombieSince := map[string]time.Time{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := 0
		for _, pid := range pids {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue // reaped
			}
			left++
			if state := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))[0]; state != "Z" {
				continue
			}
			if _, ok := zombieSince[pid]; !ok {
				zombieSince[pid] = time.Now()
			}
			if z := time.Since(zombieSince[pid]); z > time.Second {
				t.Fatalf("escapee %s has been a zombie for %v", pid, z)
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 25 escapees still there after 5 s", left)
		}
	}
}

// The Reaper never takes a child that has a waiter of its own: os/exec's
// (net/http/cgi's scripts) Wait still gets the exit status, even when it
// comes late, after the child has been a zombie for a while and SIGCHLDs
// have come and gone.
func TestReaperLeavesOtherWaitersChildrenAlone(t *testing.T) {
	t.Parallel()
	startReaper(t)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("sh", "-c", "exit $0", strconv.Itoa(i+1))
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			waitZombie(t, cmd.Process.Pid)
			time.Sleep(100 * time.Millisecond) // the Reaper has looked, more than once
			var exitErr *exec.ExitError
			if err := cmd.Wait(); !errors.As(err, &exitErr) || exitErr.ExitCode() != i+1 {
				t.Errorf("child %d: Wait returned %v, want exit status %d", i, err, i+1)
			}
		}()
	}
	wg.Wait()
}

// waitZombie waits until pid has exited and is not yet reaped.
func waitZombie(t *testing.T, pid int) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Errorf("pid %d was reaped behind its waiter's back", pid)
			return
		}
		if strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))[0] == "Z" {
			return
		}
	}
	t.Errorf("pid %d did not exit within 5 s", pid)
}

// A program still open for writing somewhere (ETXTBSY) for a moment after
// it was written, as when another process forked meanwhile, starts once it
// is closed: Start tries again for a while.
func TestProgramBusyForAMomentStillStarts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "busy.sh")
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("#!/bin/sh\necho started\n"); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(30*time.Millisecond, func() { w.Close() })
	c := startSpec(t, Spec{Path: path})
	if out, _ := c.finish(t, 5*time.Second); out != "started\n" {
		t.Errorf("stdout = %q, want the script's output", out)
	}
}
