package process

import (
	"io"
	"sync"
	"syscall"
)

// Feed passes the child's stdout and stderr to the writers as they are read,
// in pieces of any size, until the whole group is gone, and returns how the
// child ended. Call it exactly once, from the owner's goroutine: it is the
// only caller of the writers.
//
// A Write that blocks holds the child back: that is the backpressure.
// Whenever a pipe holds nothing more for the moment, its writer is flushed if
// it has a Flush method, so that it can batch; stdout's writer is flushed,
// too, when Wake asks. At the end of an output its writer is closed if it is
// an io.Closer. After a writer's error, what follows is read and dropped. A
// nil writer drops everything.
//
// The child's exit, or the end of its stdout (a child that closed its output
// is done, as in websocketd), begins the stop sequence; Feed returns once the
// leader has exited and the group no longer holds the output open, or once
// SIGKILL has been sent, and the group has been killed and reaped.
func (p *Process) Feed(stdout, stderr io.Writer) Status {
	defer close(p.finished)
	defer p.watch.close()
	out := &feed{fd: p.stdoutFd, w: orDiscard(stdout), flag: stdoutReady, watch: p.watch}
	errs := &feed{fd: p.stderrFd, w: orDiscard(stderr), flag: stderrReady, watch: p.watch}
	defer out.close()
	defer errs.close()
	feeds := [...]*feed{out, errs}
	exited := false
	for !exited || out.fd >= 0 || errs.fd >= 0 {
		ready := p.nextEvents(feeds[:], exited)
		if ready == 0 { // woken
			if p.killed.Load() {
				break
			}
			if p.wakeAsked.Swap(false) && out.fd >= 0 {
				out.flushNow()
			}
			continue
		}
		if ready&exitReady != 0 {
			p.reapLeader()
			exited = true
		}
		for _, f := range feeds {
			if ready&f.flag != 0 {
				f.pass()
			}
		}
		if exited || out.fd < 0 {
			p.Stop()
		}
	}
	if !exited { // SIGKILL was sent: the leader is dying
		p.signalGroup(syscall.SIGKILL)
		p.reapLeader()
	}
	p.sweep()
	return p.status
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// nextEvents returns what happened next, or 0 when Kill, Wake or a step of
// the stop sequence asked for attention. Before it waits, a writer that was
// fed a full buffer, and so not flushed, is flushed if nothing more is ready,
// and an output whose writer failed is held or released (holdFailed).
func (p *Process) nextEvents(feeds []*feed, exited bool) int {
	p.watch.rearm() // before the flags are read: a kick after it is not lost
	p.holdFailed(feeds, exited)
	if p.killed.Load() || p.wakeAsked.Load() {
		return 0
	}
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
	return p.watch.next()
}

// holdFailed stops reading an output whose writer has failed (the client is
// gone or closing) until the child has exited or the stop sequence has
// signalled its group, and then reads it again, dropping what it reads.
// Reading and dropping at once would let a child that prints without pause
// (yes) run flat out until its SIGINT, and many such children, at a
// shutdown, starve wsgate itself of the CPU it needs to close their
// sessions; held, the child blocks on its full pipe. Once signalled, it may
// print its last words on its way out.
func (p *Process) holdFailed(feeds []*feed, exited bool) {
	release := exited || p.signalled.Load()
	for _, f := range feeds {
		if hold := f.failed && f.fd >= 0 && !release; hold != f.held {
			p.watch.watchOutput(f.fd, f.flag, !hold)
			f.held = hold
		}
	}
}

// reapLeader collects the exited leader.
func (p *Process) reapLeader() {
	p.status = statusOf(p.watch.reapLeader(p.pid))
	close(p.exited)
}

// sweep kills whatever is left of the group and reaps the members that were
// orphaned to us, and any escapee that has exited. From then on the stop
// sequence signals nothing: the group's id may be reused.
func (p *Process) sweep() {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	p.signalGroup(syscall.SIGKILL)
	reapGroup(p.pid)
	reapEscapees()
	p.gone = true
	if p.stopTime != nil {
		p.stopTime.Stop()
	}
	p.stdin.Close()
}

// feed passes one of the child's outputs to its writer.
type feed struct {
	fd     int // the parent's read end; -1 once the output has ended
	w      io.Writer
	flag   int
	watch  *watcher // which closes fd
	dirty  bool     // written to but not flushed
	failed bool     // w returned an error: drop the rest
	held   bool     // failed, and not read for now (holdFailed)
}

// pass passes on what the pipe holds now. A read that did not fill the
// buffer emptied the pipe, so the writer is flushed then; after a full one,
// more is likely ready. At the end of the output the writer is closed.
func (f *feed) pass() {
	buf := outputPool.Get().(*[]byte)
	defer outputPool.Put(buf)
	n, err := syscall.Read(f.fd, *buf)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return
	case n <= 0: // the end: EOF from a pipe, EIO from a pseudo-terminal
		// whose every slave is closed, or an error that ends it just the same
		f.flush()
		if c, ok := f.w.(io.Closer); ok && !f.failed {
			_ = c.Close()
		}
		f.close() // which also takes it out of the watcher
		return
	}
	if !f.failed {
		_, werr := f.w.Write((*buf)[:n])
		f.failed = werr != nil
	}
	f.dirty = true
	if n < len(*buf) {
		f.flush()
	}
}

// flush flushes the writer if it was written to and has a Flush method.
func (f *feed) flush() {
	if f.dirty {
		f.flushNow()
	}
}

// flushNow flushes the writer if it has a Flush method.
func (f *feed) flushNow() {
	f.dirty = false
	if flusher, ok := f.w.(interface{ Flush() error }); ok && !f.failed {
		f.failed = flusher.Flush() != nil
	}
}

// close closes the parent's read end.
func (f *feed) close() {
	if f.fd >= 0 {
		f.watch.closeOutput(f.fd)
		f.fd = -1
	}
}

// outputPool holds the buffers output is read into, so that a quiet child's
// feeder holds none.
var outputPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}
