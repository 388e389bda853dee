//go:build linux && !wsgate_portable

package process

import (
	"io"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// A child started by a goroutine locked to a thread that then ends must
// outlive that thread: were it forked there, the parent-death signal would
// kill it as the thread exits, although the program is alive.
func TestChildOutlivesTheThreadOfTheGoroutineThatStartedIt(t *testing.T) {
	t.Parallel()
	type started struct {
		p   *Process
		err error
	}
	result := make(chan started, 1)
	startOnThreadThatEnds(func() {
		p, err := Start(Spec{Path: "/bin/cat"})
		result <- started{p, err}
	})
	r := <-result
	if r.err != nil {
		t.Fatal(r.err)
	}
	c := &child{Process: r.p, stdout: &recorder{}, stderr: &recorder{}, fed: make(chan Status, 1)}
	go func() { c.fed <- r.p.Feed(c.stdout, c.stderr) }()
	t.Cleanup(func() {
		r.p.Kill()
		<-r.p.Done()
	})

	time.Sleep(300 * time.Millisecond) // the thread has ended by now
	if _, err := io.WriteString(c.Stdin(), "still here\n"); err != nil {
		t.Fatalf("write to the child: %v (status %v)", err, statusIfExited(c.Process))
	}
	c.stdout.waitFor(t, "still here\n", 5*time.Second)
	select {
	case <-c.Done():
		t.Fatalf("the child ended: %v", c.Status())
	default:
	}
}

// statusIfExited is the child's status, or "running".
func statusIfExited(p *Process) string {
	select {
	case <-p.exited:
		return p.status.String()
	default:
		return "running"
	}
}

// startOnThreadThatEnds runs start in a goroutine locked to a thread that
// ends with it. The main thread never ends (the runtime parks it instead),
// so if the goroutine lands there, it holds it while another one runs start.
func startOnThreadThatEnds(start func()) {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if syscall.Gettid() != syscall.Getpid() {
			start()
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // on another thread: the main one is held
			start()
		}()
		<-done
		runtime.UnlockOSThread()
	}()
}
