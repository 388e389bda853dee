// Package process starts, feeds, stops and reaps the child processes behind
// wsgate's connections. It knows nothing of HTTP or WebSocket. It has two
// backends behind the same Process: Linux's (a pidfd per child, an epoll
// set per child, the fork thread, the subreaper; spawn_linux.go,
// watch_linux.go, reap_linux.go), and a portable one for macOS and FreeBSD,
// also built on Linux with the wsgate_portable tag so that it is tested
// there (SIGCHLD for exits, the runtime's poller for output, nothing of the
// subreaper or the parent-death signal; spawn_portable.go,
// watch_portable.go, reap_portable.go). Where this comment says Linux, the
// portable backend does without.
//
// Each child runs in its own process group, so that signals reach every
// process it forked. Its stdin is a plain pipe the owner writes. Start forks
// the child and starts no goroutine; the owner, once it has built itself,
// calls Feed from a goroutine of its own, which passes stdout and stderr to
// the owner's writers and returns once the whole group is gone. Feed waits
// for the child's exit and its output together, holding no OS thread and,
// while the child is quiet, no buffer.
//
// The stop sequence has one driver: a timer of the Process, begun by Stop,
// by the child's exit or by the end of its stdout, whichever comes first.
// Stop, Kill, Wake, Done and Status may be called from any goroutine.
//
// The first Start makes the calling program a child subreaper (Linux), so that
// grandchildren orphaned by a dying child are reparented to it and reaped by
// the sweep that ends every child, instead of lingering as zombies under an
// init that does not reap. A process that left its group with setsid is out
// of the sweep's reach and may run on; once it has exited, a Reaper (one per
// program, see StartReaper) reaps it at once, and else a later sweep.
//
// If the program dies without stopping its children (SIGKILL, a crash), each
// child gets SIGKILL from the kernel (the parent-death signal, see
// forkthread.go). Grandchildren do not: they end when they next write to
// the output the dead program no longer reads (SIGPIPE), or when the
// service manager stops what is left (systemd's KillMode).
package process

import (
	"fmt"
	"os"
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

// StopBound is how long the stop sequence with the given grace takes at
// most, from its start until SIGKILL has been sent to the whole group.
func StopBound(grace time.Duration) time.Duration {
	return stdinCloseWait + interruptWait + terminateWait + 3*grace
}

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
	// TerminalStdout makes the child's stdout a pseudo-terminal in raw mode
	// instead of a pipe: programs that buffer what they write to a pipe (C
	// stdio, Python) then write each line as they print it. Nothing is
	// added to or taken from the bytes (no "\r", no echo), stdin and stderr
	// stay pipes, and the terminal is not the child's controlling terminal.
	// Backpressure, Feed and the stop sequence are the same as with a pipe.
	TerminalStdout bool
}

// Process is one running child and its process group.
type Process struct {
	pid      int
	grace    time.Duration
	stdin    *os.File
	stdoutFd int // the parent's read ends, owned by Feed
	stderrFd int
	watch    *watcher

	exited   chan struct{} // closed once the leader has been reaped
	finished chan struct{} // closed once the whole group is gone
	status   Status        // valid once exited is closed

	wakeAsked atomic.Bool // Wake was called: Feed flushes stdout's writer
	signalled atomic.Bool // the stop sequence or Kill signalled the group
	killed    atomic.Bool // SIGKILL went to the group: Feed ends whatever holds the output

	stopMu   sync.Mutex // guards what follows: the stop sequence's state
	stopping bool       // the stop sequence has begun
	stopStep int        // the next step of stopSteps
	stopTime *time.Timer
	gone     bool // the group has been swept: signal nothing more
}

// Start runs spec in a new process group. The caller must call Feed.
func Start(spec Spec) (*Process, error) {
	becomeSubreaper()
	var files pipeSet
	defer files.closeChildEnds()
	if err := files.open(spec.TerminalStdout); err != nil {
		files.closeParentEnds()
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	pid, watch, err := spawn(spec, &files)
	if err != nil {
		files.closeParentEnds()
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	return &Process{
		pid:      pid,
		grace:    spec.Grace,
		stdin:    files.stdin,
		stdoutFd: files.stdout,
		stderrFd: files.stderr,
		watch:    watch,
		exited:   make(chan struct{}),
		finished: make(chan struct{}),
	}, nil
}

// textBusyRetries are the waits before each new attempt at a program that
// was busy (ETXTBSY): 155 ms in all.
var textBusyRetries = []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}

// forkExecRetrying is syscall.ForkExec, tried again for a while when the
// program is open for writing somewhere (ETXTBSY). That happens for a
// moment after a script is written, whenever any process forked meanwhile
// (inheriting the writer's descriptor until its own exec closes it), as on
// a busy machine that deploys a script while serving, or a test suite that
// writes scripts while starting servers (golang.org/issue/22315).
func forkExecRetrying(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	pid, err := syscall.ForkExec(path, argv, attr)
	for _, wait := range textBusyRetries {
		if err != syscall.ETXTBSY {
			break
		}
		time.Sleep(wait)
		pid, err = syscall.ForkExec(path, argv, attr)
	}
	return pid, err
}

// Pid returns the child's process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Stdin is the write end of the child's standard input. The stop sequence
// closes it, which ends a write blocked on a child that does not read. Its
// write deadline bounds a write, too.
func (p *Process) Stdin() *os.File { return p.stdin }

// Done is closed once the child has exited, its output has been passed on
// and every other process of its group has been killed and reaped.
func (p *Process) Done() <-chan struct{} { return p.finished }

// Status returns how the child ended. It waits until the child has exited.
func (p *Process) Status() Status {
	<-p.exited
	return p.status
}

// Stop asks for the stop sequence and returns at once: stdin is closed, then
// the group gets SIGINT, SIGTERM and SIGKILL in turn, each after its delay
// plus the grace, until the group is gone. Wait on Done for the end. Stop is
// safe to call more than once and from several goroutines.
func (p *Process) Stop() {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.stopping || p.gone {
		return
	}
	p.stopping = true
	p.stdin.Close()
	p.stopTime = time.AfterFunc(stopSteps[0].wait+p.grace, p.stopStepDue)
}

// Kill sends SIGKILL to the whole group at once, without the stop sequence
// and without waiting. Feed still reaps the group and returns.
func (p *Process) Kill() {
	p.stopMu.Lock()
	if !p.gone {
		p.signalGroup(syscall.SIGKILL)
	}
	p.stopMu.Unlock()
	p.signalled.Store(true)
	p.killed.Store(true)
	p.watch.kick()
}

// Wake makes Feed call stdout's writer's Flush method soon, from Feed's own
// goroutine, even while the child prints nothing: for an owner that has
// something else to write where the child's output goes.
func (p *Process) Wake() {
	p.wakeAsked.Store(true)
	p.watch.kick()
}

// stopSteps are the signal steps of the stop sequence: each is sent when its
// wait (plus the grace) has passed without the group being gone.
var stopSteps = []struct {
	wait time.Duration
	sig  syscall.Signal
}{
	{stdinCloseWait, syscall.SIGINT},
	{interruptWait, syscall.SIGTERM},
	{terminateWait, syscall.SIGKILL},
}

// stopStepDue sends the step of the stop sequence that is due and schedules
// the next. Once SIGKILL is sent, Feed ends even if a process that escaped
// the group still holds the output.
func (p *Process) stopStepDue() {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.gone {
		return
	}
	p.signalGroup(stopSteps[p.stopStep].sig)
	p.signalled.Store(true) // Feed reads held output again: see holdFailed
	p.stopStep++
	if p.stopStep < len(stopSteps) {
		p.stopTime.Reset(stopSteps[p.stopStep].wait + p.grace)
		p.watch.kick()
		return
	}
	p.killed.Store(true)
	p.watch.kick()
}

// signalGroup sends sig to every process of the child's group. A group that
// is already gone is not an error.
func (p *Process) signalGroup(sig syscall.Signal) {
	// ESRCH means the group is gone already; EPERM can only mean a member
	// changed its credentials, and nothing more can be done for it here.
	_ = syscall.Kill(-p.pid, sig)
}
