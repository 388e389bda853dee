package process

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Retry delays of a Reaper whose look was hidden by an exited child of the
// program's own session: that child's waiter collects it within moments,
// and the escapees behind it are reaped at the next look.
const (
	reapRetryFirst = 5 * time.Millisecond
	reapRetryMax   = 500 * time.Millisecond
)

// A Reaper reaps the processes that left a child's session with setsid, as
// soon as they exit. Such a process is out of the stop sequence's reach (it
// is in no child's process group) and may outlive its session; orphaned to
// this program, the child subreaper, it becomes a zombie of the program when
// it exits, and nothing else waits for it.
//
// The Reaper looks on every SIGCHLD, and takes only exited children of
// another session than the program's: its own children, those of os/exec
// (net/http/cgi's scripts) and every Process's leader and group, are left to
// their waiters. A program that starts children in a session of their own
// by other means than Start must not run a Reaper.
//
// Its goroutine belongs to whoever called StartReaper, which must call
// Stop: a program runs one for its whole life (wsgate's main does).
type Reaper struct {
	signals chan os.Signal
	stop    chan struct{}
	done    chan struct{}
}

// StartReaper makes the program a child subreaper, as Start does, and
// starts reaping escapees on SIGCHLD until Stop.
func StartReaper() *Reaper {
	becomeSubreaper()
	r := &Reaper{
		signals: make(chan os.Signal, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	signal.Notify(r.signals, syscall.SIGCHLD)
	go r.reapOnSIGCHLD()
	return r
}

// Stop stops reaping and waits for the Reaper's goroutine to end.
func (r *Reaper) Stop() {
	signal.Stop(r.signals)
	close(r.stop)
	<-r.done
}

// reapOnSIGCHLD looks for exited escapees at once, on every SIGCHLD
// (signals that come together are one), and again soon after a look that an
// exited child of the program's own hid them from.
func (r *Reaper) reapOnSIGCHLD() {
	defer close(r.done)
	retry := time.NewTimer(reapRetryMax)
	defer retry.Stop()
	delay := reapRetryFirst
	for {
		if reapEscapees() {
			retry.Reset(delay)
			delay = min(2*delay, reapRetryMax)
		} else {
			retry.Stop()
			delay = reapRetryFirst
		}
		select {
		case <-r.stop:
			return
		case <-r.signals:
		case <-retry.C:
		}
	}
}
