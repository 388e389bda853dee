// Package process starts, feeds, stops and reaps the child processes behind
// wsgate's connections. It uses only the standard library, knows nothing of
// HTTP or WebSocket, and runs on Linux.
//
// Each child runs in its own process group, so that signals reach every
// process it forked. Its stdin and stdout are plain pipes owned by the
// caller: one goroutine writes Stdin, one reads Stdout. Stderr goes to the
// Spec's Stderr writer, or is read by the caller. One supervising goroutine
// per child waits for its exit and its stderr together, holding no OS thread.
// Stop, Kill, Done and Status may be called from any goroutine.
//
// The first Start makes the calling program a child subreaper (Linux), so that
// grandchildren orphaned by a dying child are reparented to it and reaped by
// the sweep that ends every child, instead of lingering as zombies under an
// init that does not reap.
package process

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stop sequence timings, as websocketd's. Each step waits its delay plus the
// Spec's Grace for the child to exit before the next signal is sent.
const (
	stdinCloseWait = 100 * time.Millisecond // stdin closed, then SIGINT
	interruptWait  = 250 * time.Millisecond // SIGINT sent, then SIGTERM
	terminateWait  = 500 * time.Millisecond // SIGTERM sent, then SIGKILL
)

// orphanReadWait bounds how long a read of Stdout or Stderr waits once the
// child's group has been swept: only a process that left the group (setsid)
// can still hold the pipe then, and it must not hold the session.
const orphanReadWait = 100 * time.Millisecond

// Spec says what to run.
type Spec struct {
	// Path is the program to run; it is resolved by the caller.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env is the whole environment of the child; nothing is inherited.
	Env []string
	// Dir is the working directory; empty means the caller's.
	Dir string
	// Grace is added to each step of the stop sequence (websocketd's --closems).
	Grace time.Duration
	// Stderr receives the child's stderr as it is read, in pieces of any
	// size; at its end, Stderr is closed if it is an io.Closer. When nil,
	// the caller reads Process.Stderr itself.
	Stderr io.Writer
}

// Process is one running child and its process group.
type Process struct {
	cmd    *exec.Cmd
	pid    int
	grace  time.Duration
	stdin  *os.File
	stdout *Output
	stderr *Output
	sink   io.Writer // where stderr goes, or nil
	watch  *watcher

	exited   chan struct{} // closed once the leader has been reaped
	finished chan struct{} // closed once the whole group is gone
	status   Status        // valid once exited is closed

	stopOnce sync.Once
	swept    atomic.Bool
}

// Start runs spec in a new process group.
func Start(spec Spec) (*Process, error) {
	becomeSubreaper()
	var files pipeSet
	defer files.closeChildEnds()
	if err := files.open(); err != nil {
		files.closeParentEnds()
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}

	cmd := &exec.Cmd{
		Path:        spec.Path,
		Args:        append([]string{spec.Path}, spec.Args...),
		Env:         spec.Env,
		Dir:         spec.Dir,
		Stdin:       files.childStdin,
		Stdout:      files.childStdout,
		Stderr:      files.childStderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would mean "inherit"
	}
	if err := cmd.Start(); err != nil {
		files.closeParentEnds()
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}

	watch, err := newWatcher(cmd.Process.Pid, files.stdout, files.stderr, spec.Stderr != nil)
	if err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		files.closeParentEnds()
		return nil, fmt.Errorf("watch %s: %w", spec.Path, err)
	}
	p := &Process{
		cmd:      cmd,
		pid:      cmd.Process.Pid,
		grace:    spec.Grace,
		stdin:    files.stdin,
		sink:     spec.Stderr,
		watch:    watch,
		exited:   make(chan struct{}),
		finished: make(chan struct{}),
	}
	p.stdout = newOutput(files.stdout, &p.swept)
	p.stderr = newOutput(files.stderr, &p.swept)
	go p.supervise()
	return p, nil
}

// Pid returns the child's process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Stdin is the write end of the child's standard input. Closing it tells the
// child no more input comes; Stop closes it too. Its write deadline bounds a
// write to a child that does not read.
func (p *Process) Stdin() *os.File { return p.stdin }

// Stdout is the read end of the child's standard output. It reports io.EOF
// once every process holding the pipe has closed it or has been swept.
func (p *Process) Stdout() *Output { return p.stdout }

// Stderr is the read end of the child's standard error, as Stdout. Read it
// only when the Spec had no Stderr writer.
func (p *Process) Stderr() *Output { return p.stderr }

// Done is closed once the child has exited, its output has been closed, and
// every other process of its group has been killed and reaped.
func (p *Process) Done() <-chan struct{} { return p.finished }

// Status returns how the child ended. It is valid once Done is closed.
func (p *Process) Status() Status {
	<-p.exited
	return p.status
}

// Stop ends the child with the stop sequence: stdin is closed, then the group
// gets SIGINT, SIGTERM and SIGKILL in turn, each after its delay plus the
// grace, until the child has exited. Stop returns once Done is closed. It is
// safe to call more than once and from several goroutines.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		p.stdin.Close()
		p.signalUntil(p.exited)
	})
	<-p.finished
}

// Kill sends SIGKILL to the whole group at once, without the stop sequence
// and without waiting. The child is still reaped as usual.
func (p *Process) Kill() {
	p.stdin.Close()
	p.signalGroup(syscall.SIGKILL)
}

// Close releases the parent's ends of the output pipes. Call it after the
// readers of Stdout and Stderr have returned and Done is closed.
func (p *Process) Close() {
	p.stdin.Close()
	p.stdout.file.Close()
	p.stderr.file.Close()
}

// supervise owns the child from start to reaping. It passes stderr on while
// the child runs. After the leader exits, the rest of its group gets the
// stop sequence for as long as it holds stdout or stderr open, and is then
// killed and reaped whatever it was doing.
func (p *Process) supervise() {
	defer close(p.finished)
	defer p.watch.close()
	open := stdoutHupd | stderrReady // what the group still holds
	var steps *stopSchedule          // the post-exit sequence, once the leader is gone
	for open != 0 || steps == nil {
		var deadline time.Time
		if steps != nil {
			deadline = steps.next
		}
		ready := p.watch.next(deadline)
		if ready&exitReady != 0 {
			p.status = statusOf(reap(p.pid))
			_ = p.cmd.Process.Release() // reaped by hand: drop exec's own handle
			close(p.exited)
			p.watch.stop(p.watch.pidfd)
			steps = newStopSchedule(time.Now(), p.grace)
		}
		if ready&stdoutHupd != 0 {
			p.watch.stop(p.watch.stdout)
			open &^= stdoutHupd
		}
		if ready&stderrReady != 0 && p.passStderr() {
			p.watch.stop(p.watch.stderr)
			open &^= stderrReady
		}
		if ready == 0 && steps != nil && !steps.signal(p) {
			break // SIGKILL has been sent
		}
	}
	p.sweep()
}

// passStderr passes what stderr holds to the sink, and reports whether
// stderr has ended (always, when there is no sink: then only its hang-up is
// watched).
func (p *Process) passStderr() (ended bool) {
	if p.sink == nil {
		return true
	}
	buf := stderrPool.Get().(*[]byte)
	defer stderrPool.Put(buf)
	n, err := p.stderr.Read(*buf)
	if n > 0 {
		_, _ = p.sink.Write((*buf)[:n])
	}
	if err == nil {
		return false
	}
	if c, ok := p.sink.(io.Closer); ok {
		_ = c.Close()
	}
	return true
}

// stderrPool holds the buffers stderr is read into, so that a quiet child's
// supervisor holds none.
var stderrPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// stopSchedule is the stop sequence against what is left of a group after
// its leader exited.
type stopSchedule struct {
	next  time.Time
	step  int
	grace time.Duration
}

func newStopSchedule(now time.Time, grace time.Duration) *stopSchedule {
	return &stopSchedule{next: now.Add(stopSteps[0].wait + grace), grace: grace}
}

// signal sends the step that is due and schedules the next; it reports false
// once the last step, SIGKILL, has been sent.
func (s *stopSchedule) signal(p *Process) bool {
	p.signalGroup(stopSteps[s.step].sig)
	s.step++
	if s.step == len(stopSteps) {
		return false
	}
	s.next = time.Now().Add(stopSteps[s.step].wait + s.grace)
	return true
}

// stopSteps are the signal steps of the stop sequence: each is sent when its
// wait (plus the grace) has passed without the child ending.
var stopSteps = []struct {
	wait time.Duration
	sig  syscall.Signal
}{
	{stdinCloseWait, syscall.SIGINT},
	{interruptWait, syscall.SIGTERM},
	{terminateWait, syscall.SIGKILL},
}

// signalUntil runs the signal steps of the stop sequence against the group
// until done is closed.
func (p *Process) signalUntil(done <-chan struct{}) {
	for _, step := range stopSteps {
		timer := time.NewTimer(step.wait + p.grace)
		select {
		case <-done:
			timer.Stop()
			return
		case <-timer.C:
		}
		p.signalGroup(step.sig)
	}
}

// sweep kills whatever is left of the group and reaps the members that were
// orphaned to us. Reads of the output pipes stop waiting for escaped holders.
func (p *Process) sweep() {
	p.signalGroup(syscall.SIGKILL)
	reapGroup(p.Pid())
	p.swept.Store(true)
	p.stdout.wake()
	p.stderr.wake()
}

// signalGroup sends sig to every process of the child's group. A group that
// is already gone is not an error.
func (p *Process) signalGroup(sig syscall.Signal) {
	// ESRCH means the group is gone already; EPERM can only mean a member
	// changed its credentials, and nothing more can be done for it here.
	_ = syscall.Kill(-p.Pid(), sig)
}
