package process

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

var subreaperOnce sync.Once

// becomeSubreaper makes this program the reaper of the orphans of its
// children, so that reapGroup can collect a dead child's grandchildren.
func becomeSubreaper() {
	subreaperOnce.Do(func() {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}

// reapGroup reaps every child of ours left in process group pgid. Called
// after the group was sent SIGKILL, it returns once they are all collected.
func reapGroup(pgid int) {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-pgid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: none left
			return
		}
	}
}

// sysPidfdOpen is pidfd_open(2)'s number, the same on every architecture.
const sysPidfdOpen = 434

// waitLeader waits for the child pid to exit and reaps it. It parks on a
// pidfd in the runtime's poller rather than in a blocking wait, so that ten
// thousand waiting children do not hold ten thousand OS threads.
func waitLeader(pid int) syscall.WaitStatus {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), syscall.O_NONBLOCK, 0)
	if errno != 0 {
		return blockingWait(pid)
	}
	pidfd := os.NewFile(fd, "pidfd")
	defer pidfd.Close()
	conn, err := pidfd.SyscallConn()
	if err != nil {
		return blockingWait(pid)
	}
	var ws syscall.WaitStatus
	reaped := false
	err = conn.Read(func(uintptr) bool {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		reaped = got == pid
		return reaped || err != nil && err != syscall.EINTR
	})
	if err != nil || !reaped {
		return blockingWait(pid) // the pidfd is not pollable here
	}
	return ws
}

func blockingWait(pid int) syscall.WaitStatus {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws
		}
	}
}
