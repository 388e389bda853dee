// Package process starts, feeds, stops and reaps the child processes behind
// wsgate's connections. It uses only the standard library and knows nothing
// of HTTP or WebSocket.
//
// Each child runs in its own process group, so that signals reach every
// process it forked. Its stdin, stdout and stderr are plain pipes owned by
// the caller: one goroutine writes Stdin, one reads Stdout, one reads Stderr.
// Stop, Done and Status may be called from any goroutine.
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
}

// Process is one running child and its process group.
type Process struct {
	cmd    *exec.Cmd
	pid    int
	grace  time.Duration
	stdin  *os.File
	stdout *outputPipe
	stderr *outputPipe

	exited        chan struct{} // closed once the leader has been reaped
	outputsClosed chan struct{} // closed once stdout and stderr reached EOF
	openOutputs   atomic.Int32
	finished      chan struct{} // closed once the whole group is gone
	status        Status        // valid once exited is closed

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

	p := &Process{
		cmd:           cmd,
		pid:           cmd.Process.Pid,
		grace:         spec.Grace,
		stdin:         files.stdin,
		exited:        make(chan struct{}),
		outputsClosed: make(chan struct{}),
		finished:      make(chan struct{}),
	}
	p.openOutputs.Store(2)
	p.stdout = newOutputPipe(files.stdout, &p.swept, p.outputEOF)
	p.stderr = newOutputPipe(files.stderr, &p.swept, p.outputEOF)
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
func (p *Process) Stdout() io.Reader { return p.stdout }

// Stderr is the read end of the child's standard error, as Stdout.
func (p *Process) Stderr() io.Reader { return p.stderr }

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

// supervise owns the child from start to reaping. After the leader exits, the
// rest of its group gets the stop sequence for as long as it holds the output
// open, and is then killed and reaped whatever it was doing.
func (p *Process) supervise() {
	defer close(p.finished)
	p.status = statusOf(waitLeader(p.Pid()))
	_ = p.cmd.Process.Release() // reaped by hand: drop exec's own handle
	close(p.exited)

	p.signalUntil(p.outputsClosed)
	p.sweep()
}

// signalUntil runs the signal steps of the stop sequence against the group
// until done is closed.
func (p *Process) signalUntil(done <-chan struct{}) {
	steps := []struct {
		wait time.Duration
		sig  syscall.Signal
	}{
		{stdinCloseWait, syscall.SIGINT},
		{interruptWait, syscall.SIGTERM},
		{terminateWait, syscall.SIGKILL},
	}
	for _, step := range steps {
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

// outputEOF is called once by each output pipe when its reader sees EOF.
func (p *Process) outputEOF() {
	if p.openOutputs.Add(-1) == 0 {
		close(p.outputsClosed)
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
