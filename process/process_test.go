package process

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testrun"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start runs sh -c script and registers a cleanup that stops it and checks
// that nothing of its group is left.
func start(t *testing.T, script string, grace time.Duration) *Process {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(Spec{Path: sh, Args: []string{"-c", script}, Env: []string{"PATH=" + os.Getenv("PATH")}, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Stop()
		go io.Copy(io.Discard, p.Stdout())
		go io.Copy(io.Discard, p.Stderr())
		<-p.Done()
		p.Close()
		assertGroupGone(t, p.Pid())
	})
	return p
}

// groupMembers lists the processes of group pgid, zombies included.
func groupMembers(pgid int) []testrun.Proc { return testrun.GroupMembers(pgid) }

func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	if left := groupMembers(pgid); len(left) > 0 {
		t.Errorf("process group %d still has %v", pgid, left)
	}
}

// drain reads r to the end in the background and returns what it read.
func drain(r io.Reader) <-chan string {
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	return out
}

// finish reads both outputs to the end and waits for Done, bounded.
func finish(t *testing.T, p *Process, within time.Duration) (stdout string, took time.Duration) {
	t.Helper()
	begin := time.Now()
	out, errOut := drain(p.Stdout()), drain(p.Stderr())
	select {
	case <-p.Done():
	case <-time.After(within):
		t.Fatalf("child not done within %v", within)
	}
	stdout = <-out
	<-errOut
	return stdout, time.Since(begin)
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
			finish(t, p, 5*time.Second)
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
	out, _ := finish(t, p, 5*time.Second)
	if want := "got hello\nno newline"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

func TestEnvironmentIsOnlyWhatIsGiven(t *testing.T) {
	t.Setenv("WSGATE_CANARY", "leaked")
	p, err := Start(Spec{Path: "/usr/bin/env", Env: []string{"A=1", "B=two words"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := finish(t, p, 5*time.Second)
	p.Close()
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
		wantStatus string
		min, max   time.Duration // how long Stop may take
	}{
		{"stdin-close-ends-cat", "exec cat", "exit status 0", 0, 90 * time.Millisecond},
		{"SIGINT-ends-it", "exec sleep 30", "signal: interrupt", 100 * time.Millisecond, 300 * time.Millisecond},
		{"SIGINT-ignored", "trap '' INT; exec sleep 30", "signal: terminated", 350 * time.Millisecond, 600 * time.Millisecond},
		{"SIGINT-and-SIGTERM-ignored", "trap '' INT TERM; exec sleep 30", "signal: killed", 850 * time.Millisecond, 1100 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, c.script, 0)
			go io.Copy(io.Discard, p.Stdout())
			go io.Copy(io.Discard, p.Stderr())
			time.Sleep(50 * time.Millisecond) // let sh set its traps
			begin := time.Now()
			p.Stop()
			took := time.Since(begin)
			if got := p.Status().String(); got != c.wantStatus {
				t.Errorf("status = %q, want %q", got, c.wantStatus)
			}
			if took < c.min || took > c.max {
				t.Errorf("Stop took %v, want %v to %v", took, c.min, c.max)
			}
			assertGroupGone(t, p.Pid())
		})
	}
}

func TestStopGraceIsAddedToEachStep(t *testing.T) {
	t.Parallel()
	const grace = 200 * time.Millisecond
	p := start(t, "trap '' INT TERM; exec sleep 30", grace)
	go io.Copy(io.Discard, p.Stdout())
	go io.Copy(io.Discard, p.Stderr())
	time.Sleep(50 * time.Millisecond)
	begin := time.Now()
	p.Stop()
	if took, min := time.Since(begin), 850*time.Millisecond+3*grace; took < min || took > min+300*time.Millisecond {
		t.Errorf("Stop took %v, want about %v", took, min)
	}
}

func TestStopReachesGrandchildren(t *testing.T) {
	t.Parallel()
	// The grandchildren ignore SIGINT and SIGTERM and do not hold the pipes;
	// the leader dies on SIGINT. The sweep must still take them.
	p := start(t, "(trap '' INT TERM; exec sleep 30) >/dev/null 2>&1 & (trap '' INT TERM; exec sleep 31) >/dev/null 2>&1 & echo ready; wait", 0)
	r := bufio.NewReader(p.Stdout())
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	if n := len(groupMembers(p.Pid())); n != 3 {
		t.Fatalf("group has %d members before Stop, want 3", n)
	}
	go io.Copy(io.Discard, r)
	go io.Copy(io.Discard, p.Stderr())
	p.Stop()
	assertGroupGone(t, p.Pid())
}

func TestGrandchildHoldingStdoutCannotHoldTheChild(t *testing.T) {
	t.Parallel()
	// The leader exits at once; a grandchild that ignores SIGINT keeps stdout
	// open. The output must still end, after SIGTERM reaches the group.
	p := start(t, "(trap '' INT; echo from-grandchild; exec sleep 30) & sleep 0.05; echo leader-done", 0)
	out, took := finish(t, p, 3*time.Second)
	if !strings.Contains(out, "from-grandchild\n") || !strings.Contains(out, "leader-done\n") {
		t.Errorf("stdout = %q, want both lines", out)
	}
	if took > time.Second {
		t.Errorf("output ended after %v, want under 1s", took)
	}
	if got := p.Status().String(); got != "exit status 0" {
		t.Errorf("status = %q, want the leader's own exit status 0", got)
	}
	assertGroupGone(t, p.Pid())
}

func TestEscapedGrandchildCannotHoldTheOutput(t *testing.T) {
	t.Parallel()
	// setsid leaves the group, so no signal of ours reaches it; it keeps
	// stdout open. Reads must still end once the group is swept.
	p := start(t, "setsid sh -c 'echo $$; exec sleep 30' & sleep 0.1", 0)
	out, took := finish(t, p, 3*time.Second)
	if took > 1500*time.Millisecond {
		t.Errorf("output ended after %v, want well under the stop sequence's bound", took)
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(out)); err == nil {
		syscall.Kill(pid, syscall.SIGKILL) // ours to clean up: it escaped on purpose
	} else {
		t.Errorf("stdout = %q, want the escaped pid", out)
	}
}

func TestEscapeeIsReapedOnceItHasExited(t *testing.T) {
	// Not parallel: waitid tells of one exited child at a time, and another
	// test's child, exited but not yet collected by its supervisor, would
	// hide the escapee from the sweeps below for a while.
	p := start(t, "setsid sh -c 'echo $$; exec sleep 0.2' & sleep 0.05", 0)
	out, _ := finish(t, p, 3*time.Second)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("stdout = %q, want the escaped pid", out)
	}
	// Orphaned to us, it becomes our zombie when it exits; the next sweep,
	// any child's, must reap it.
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := groupMembers(pid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("escaped process still there 3 s later: %+v", left)
		}
		finish(t, start(t, "true", 0), 3*time.Second)
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
	go io.Copy(io.Discard, p.Stdout())
	go io.Copy(io.Discard, p.Stderr())
	p.Stop()
	select {
	case err := <-written:
		if err == nil {
			t.Error("write to a child that never reads succeeded")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("write still blocked after Stop")
	}
}

func TestStopIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	p := start(t, "exec cat", 0)
	go io.Copy(io.Discard, p.Stdout())
	go io.Copy(io.Discard, p.Stderr())
	done := make(chan struct{})
	for range 4 {
		go func() {
			p.Stop()
			done <- struct{}{}
		}()
	}
	for range 4 {
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("Stop did not return")
		}
	}
	if got := p.Status().String(); got != "exit status 0" {
		t.Errorf("status = %q", got)
	}
}

// recordingSink is a Spec.Stderr that keeps what it was given.
type recordingSink struct {
	data   []byte
	closed bool
}

func (r *recordingSink) Write(p []byte) (int, error) {
	r.data = append(r.data, p...)
	return len(p), nil
}

func (r *recordingSink) Close() error {
	r.closed = true
	return nil
}

func TestStderrGoesToTheSinkWithoutStallingTheChild(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{}
	sh, _ := exec.LookPath("sh")
	// 1 MiB on stderr before stdout: a reader that did not drain stderr
	// would leave the child blocked and stdout empty.
	p, err := Start(Spec{Path: sh, Args: []string{"-c", "head -c 1048576 /dev/zero | tr '\\0' e >&2; printf tail >&2; echo out"},
		Env: []string{"PATH=" + os.Getenv("PATH")}, Stderr: sink})
	if err != nil {
		t.Fatal(err)
	}
	out := drain(p.Stdout())
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("child stalled")
	}
	got := <-out // before Close: a read of a closed Output reports EOF
	p.Close()
	if got != "out\n" {
		t.Errorf("stdout = %q", got)
	}
	if want := strings.Repeat("e", 1<<20) + "tail"; string(sink.data) != want || !sink.closed {
		t.Errorf("sink got %d bytes (closed %v), want %d and closed", len(sink.data), sink.closed, len(want))
	}
}

// flushingSink is a Spec.Stdout that records writes, flushes and its close.
type flushingSink struct {
	recordingSink
	flushes int
}

func (f *flushingSink) Flush() error {
	f.flushes++
	return nil
}

func TestStdoutIsFedToTheSinkAndItsEndStopsTheChild(t *testing.T) {
	t.Parallel()
	sink := &flushingSink{}
	done := make(chan Status, 1)
	sh, _ := exec.LookPath("sh")
	// The child closes stdout and would then sleep: the end of its output
	// must stop it (stdin closed, then SIGINT), as websocketd does.
	p, err := Start(Spec{Path: sh, Args: []string{"-c", "echo one; sleep 0.1; printf two; exec >&-; exec sleep 30"},
		Env: []string{"PATH=" + os.Getenv("PATH")}, Stdout: sink, Stderr: io.Discard,
		Done: func(s Status) { done <- s }})
	if err != nil {
		t.Fatal(err)
	}
	var status Status
	select {
	case status = <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("child not stopped after closing its output")
	}
	<-p.Done()
	p.Close()
	if string(sink.data) != "one\ntwo" || !sink.closed || sink.flushes < 1 {
		t.Errorf("sink got %q (closed %v, %d flushes), want the first write flushed and a close", sink.data, sink.closed, sink.flushes)
	}
	if status.String() != "signal: interrupt" {
		t.Errorf("status %q, want the SIGINT of the stop sequence", status)
	}
	assertGroupGone(t, p.Pid())
}
