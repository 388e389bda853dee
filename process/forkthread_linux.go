//go:build linux && !wsgate_portable

package process

import (
	"runtime"
	"sync"
	"syscall"
)

// Every child is forked from one OS thread that lives as long as the program,
// because of how the parent-death signal works. A child started with
// SysProcAttr.Pdeathsig gets that signal when the *thread* that forked it
// ends, not when the program does (prctl(2), PR_SET_PDEATHSIG). The Go
// runtime runs a goroutine on whichever thread is free and ends a thread
// when a goroutine that locked itself to it (runtime.LockOSThread) returns
// without unlocking: any code in the program, a library's included, could
// then take a child down with it. A goroutine that locks itself to a thread
// and never returns keeps that thread, and forking costs the same: forks
// are serialized by syscall.ForkLock anyway.
//
// On the other side, Go's child sets the signal before exec and, if the
// parent died in between, sends it to itself, so no child is left behind
// by that race either. A set-user-ID program loses the setting at exec, as
// prctl(2) says; the stop sequence and systemd's KillMode still reach it.

// parentDeathSignal is what a child gets when wsgate dies without stopping
// it, e.g. of SIGKILL: nothing would stop it anymore, so it cannot be asked.
const parentDeathSignal = syscall.SIGKILL

var forkThread struct {
	once sync.Once
	jobs chan func()
}

// onForkThread runs fork on the program's fork thread and returns once it
// has.
func onForkThread(fork func()) {
	forkThread.once.Do(func() {
		forkThread.jobs = make(chan func())
		go runForks(forkThread.jobs)
	})
	done := make(chan struct{})
	forkThread.jobs <- func() {
		defer close(done)
		fork()
	}
	<-done
}

// runForks is the fork thread's goroutine. It locks itself to its thread
// and never returns, so that the thread lives as long as the program.
func runForks(jobs <-chan func()) {
	runtime.LockOSThread()
	for job := range jobs {
		job()
	}
}
