package process

import (
	"errors"
	"sync"
	"syscall"

	"github.com/wsgate/wsgate/internal/pollnow"
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

func pidfdOpen(pid int) (int, error) {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// reap collects the exited leader pid and returns how it ended.
func reap(pid int) syscall.WaitStatus {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws
		}
	}
}

// readable reports whether a read of fd would return at once: it has data,
// or its writers are gone, or it failed.
func readable(fd uintptr) bool {
	revents, err := pollnow.Events(fd, pollnow.In)
	if err != nil {
		return true // let the read itself say what is wrong
	}
	return revents&(pollnow.In|pollnow.Err|pollnow.Hup) != 0
}
