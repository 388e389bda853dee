//go:build !linux

package process

import "syscall"

// becomeSubreaper is a no-op where the system has no child subreapers.
func becomeSubreaper() {}

// reapGroup is a no-op where orphans cannot be ours to reap.
func reapGroup(pgid int) {}

// waitLeader waits for the child pid to exit and reaps it.
func waitLeader(pid int) syscall.WaitStatus {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws
		}
	}
}
