// Package process starts, feeds, stops and reaps the child processes behind
// wsgate's connections. It uses only the standard library, knows nothing of
// HTTP or WebSocket, and runs on Linux.
//
// Each child runs in its own process group, so that signals reach every
// process it forked. Its stdin is a plain pipe the caller writes. Its stdout
// and stderr go to the Spec's writers, or are read by the caller. One
// supervising goroutine per child waits for its exit and its output together,
// holding no OS thread and, while the child is quiet, no buffer.
// Stop, Kill, Done and Status may be called from any goroutine.
//
// The first Start makes the calling program a child subreaper (Linux), so that
// grandchildren orphaned by a dying child are reparented to it and reaped by
// the sweep that ends every child, instead of lingering as zombies under an
// init that does not reap. A process that left its group with setsid is out
// of the sweep's reach and may run on; once it has exited, a later sweep
// reaps it.
package process

import (
	"fmt"
	"io"
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
	// Stdout receives the child's stdout as it is read, in pieces of any
	// size. A Write that blocks holds the child back: that is the
	// backpressure. Whenever the pipe holds nothing more for the moment,
	// Stdout is flushed if it has a Flush method, so that it can batch. At
	// the end of stdout it is closed if it is an io.Closer, and the stop
	// sequence begins, as websocketd's: a child that closed its output is
	// done. When nil, the caller reads Process.Stdout itself. After a write
	// error, what follows is read and dropped.
	Stdout io.Writer
	// Stderr receives the child's stderr, as Stdout (but its end stops
	// nothing).
	Stderr io.Writer
	// Done, when set, is called by the supervisor once the whole group is
	// gone, with how the child ended.
	Done func(Status)
}

// Process is one running child and its process group.
type Process struct {
	pid    int
	grace  time.Duration
	stdin  *os.File
	stdout *Output
	stderr *Output
	spec   Spec // for its writers and Done
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
	pid, pidfd, err := forkExec(spec, &files)
	if err != nil {
		files.closeParentEnds()
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	watch, err := newWatcher(pidfd, files.stdout, files.stderr, spec.Stdout != nil, spec.Stderr != nil)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		reap(pid)
		files.closeParentEnds()
		return nil, fmt.Errorf("watch %s: %w", spec.Path, err)
	}
	spec.Env, spec.Args = nil, nil // started: keep no copy for the child's whole life
	p := &Process{
		pid:      pid,
		grace:    spec.Grace,
		stdin:    files.stdin,
		spec:     spec,
		watch:    watch,
		exited:   make(chan struct{}),
		finished: make(chan struct{}),
	}
	if spec.Stdout == nil {
		p.stdout = newOutput(files.stdout, "|0", &p.swept)
	}
	if spec.Stderr == nil {
		p.stderr = newOutput(files.stderr, "|0", &p.swept)
	}
	go p.supervise(files.stdout, files.stderr)
	return p, nil
}

// forkExec starts the child on the pipes' ends, in its own process group,
// and returns its pid and a pidfd for it. It is os/exec without what wsgate
// does not need: no path lookup, no environment copy, no second pidfd.
func forkExec(spec Spec, files *pipeSet) (pid, pidfd int, err error) {
	env := spec.Env
	if env == nil {
		env = []string{} // nil would mean "inherit"
	}
	pidfd = -1
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   env,
		Files: []uintptr{uintptr(files.childStdin), uintptr(files.childStdout), uintptr(files.childStderr)},
		Sys:   &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd},
	}
	pid, err = syscall.ForkExec(spec.Path, append([]string{spec.Path}, spec.Args...), attr)
	if err != nil {
		return 0, -1, err
	}
	if pidfd < 0 { // a kernel without CLONE_PIDFD
		if pidfd, err = pidfdOpen(pid); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			reap(pid)
			return 0, -1, err
		}
	}
	return pid, pidfd, nil
}

// Pid returns the child's process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Stdin is the write end of the child's standard input. Closing it tells the
// child no more input comes; Stop closes it too. Its write deadline bounds a
// write to a child that does not read.
func (p *Process) Stdin() *os.File { return p.stdin }

// Stdout is the read end of the child's standard output for a Spec without
// a Stdout writer, else nil. It reports io.EOF once every process holding
// the pipe has closed it or has been swept.
func (p *Process) Stdout() *Output { return p.stdout }

// Stderr is the read end of the child's standard error, as Stdout.
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

// Close releases the parent's ends of the pipes. Call it after the readers
// of Stdout and Stderr, if any, have returned and Done is closed.
func (p *Process) Close() {
	p.stdin.Close()
	for _, o := range []*Output{p.stdout, p.stderr} {
		if o != nil {
			o.file.Close()
		}
	}
}

// supervise owns the child from start to reaping. It passes stdout and
// stderr on while the child runs. Once stdout has ended, or the leader has
// exited, the group gets the stop sequence for as long as the leader lives
// and the group holds its output open; it is then killed and reaped
// whatever it was doing.
func (p *Process) supervise(stdoutFd, stderrFd int) {
	defer p.finish()
	defer p.watch.close()
	stdout := &feed{fd: stdoutFd, w: p.spec.Stdout, flag: stdoutReady}
	stderr := &feed{fd: stderrFd, w: p.spec.Stderr, flag: stderrReady}
	feeds := [...]*feed{stdout, stderr}
	defer stdout.close()
	defer stderr.close()
	open := stdoutReady | stderrReady // what the group still holds
	exited := false
	var steps *stopSchedule // the stop sequence, once begun
	for !exited || open != 0 {
		ready := p.nextEvents(feeds[:], steps)
		if ready&exitReady != 0 {
			p.reapLeader()
			exited = true
		}
		for _, f := range feeds {
			if ready&f.flag != 0 && f.pass() {
				if f.w == nil {
					p.watch.stop(f.fd) // the caller's: still open
				}
				open &^= f.flag
			}
		}
		if steps == nil && (exited || open&stdoutReady == 0 && p.spec.Stdout != nil) {
			p.stdin.Close()
			steps = newStopSchedule(time.Now(), p.grace)
		}
		if ready == 0 && steps != nil && !steps.signal(p) {
			break // SIGKILL has been sent
		}
	}
	p.sweep()
}

// nextEvents returns what happened next, waiting until the stop sequence's
// next step at most. Before it waits, a writer that was fed a full buffer,
// and so not flushed, is flushed if nothing more is ready.
func (p *Process) nextEvents(feeds []*feed, steps *stopSchedule) int {
	dirty := false
	for _, f := range feeds {
		dirty = dirty || f.dirty
	}
	if dirty {
		if ready := p.watch.poll(); ready != 0 {
			return ready
		}
		for _, f := range feeds {
			f.flush()
		}
	}
	var deadline time.Time
	if steps != nil {
		deadline = steps.next
	}
	return p.watch.next(deadline)
}

// reapLeader collects the exited leader.
func (p *Process) reapLeader() {
	p.status = statusOf(reap(p.pid))
	close(p.exited)
}

// finish reports the end, once the group is gone.
func (p *Process) finish() {
	if p.spec.Done != nil {
		p.spec.Done(p.Status())
	}
	close(p.finished)
}

// feed passes one of the child's outputs to its writer.
type feed struct {
	fd     int       // the parent's read end; -1 once closed
	w      io.Writer // nil: the caller reads it, and only its end is watched
	flag   int
	dirty  bool // written to but not flushed
	failed bool // w returned an error: drop the rest
}

// pass passes on what the pipe holds now and reports whether the output has
// ended. A read that did not fill the buffer emptied the pipe, so the writer
// is flushed then; after a full one, more is likely ready.
func (f *feed) pass() (ended bool) {
	if f.w == nil {
		return true // its hang-up was reported
	}
	buf := outputPool.Get().(*[]byte)
	defer outputPool.Put(buf)
	n, err := syscall.Read(f.fd, *buf)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return false
	case n <= 0: // the end, or an error that ends it just the same
		f.flush()
		if c, ok := f.w.(io.Closer); ok && !f.failed {
			_ = c.Close()
		}
		f.close() // which also takes it out of the epoll set
		return true
	}
	if !f.failed {
		_, werr := f.w.Write((*buf)[:n])
		f.failed = werr != nil
	}
	f.dirty = true
	if n < len(*buf) {
		f.flush()
	}
	return false
}

// flush flushes the writer if it was written to and has a Flush method.
func (f *feed) flush() {
	if !f.dirty {
		return
	}
	f.dirty = false
	if flusher, ok := f.w.(interface{ Flush() error }); ok && !f.failed {
		f.failed = flusher.Flush() != nil
	}
}

// close closes the parent's read end, if the feed owns it.
func (f *feed) close() {
	if f.w != nil && f.fd >= 0 {
		syscall.Close(f.fd)
		f.fd = -1
	}
}

// outputPool holds the buffers output is read into, so that a quiet child's
// supervisor holds none.
var outputPool = sync.Pool{New: func() any {
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
	reapEscapees()
	p.swept.Store(true)
	for _, o := range []*Output{p.stdout, p.stderr} {
		if o != nil {
			o.wake()
		}
	}
}

// signalGroup sends sig to every process of the child's group. A group that
// is already gone is not an error.
func (p *Process) signalGroup(sig syscall.Signal) {
	// ESRCH means the group is gone already; EPERM can only mean a member
	// changed its credentials, and nothing more can be done for it here.
	_ = syscall.Kill(-p.Pid(), sig)
}
