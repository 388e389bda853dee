//go:build unix

package cdp

import (
	"os"
	"syscall"
	"time"
)

// killGroup kills every process in p's process group.
func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// awaitGroupGone waits, at most timeout, until no process of p's group is
// left (killed helpers take a moment to die and be reaped by init).
func awaitGroupGone(p *os.Process, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for syscall.Kill(-p.Pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}
