//go:build linux && !wsgate_portable

package process

import (
	"sync"
	"syscall"
	"unsafe"
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

// escapeesMu serialises reapEscapees: the Reaper and every sweep call it,
// and two callers that both saw one exited escapee could otherwise race
// between looking at a pid and reaping it.
var escapeesMu sync.Mutex

// reapEscapees reaps the exited processes that had left their child's
// session with setsid and were orphaned to us as the subreaper: no sweep
// waits for them, since they are in no child's group, and they would stay
// zombies for the program's life. Only processes of another session than
// ours are taken, so a child the program waits for itself, such as an
// os/exec one or a Process's leader, is never reaped behind its waiter's
// back. waitid tells of one exited child at a time, so one of ours whose
// waiter has yet to collect it hides the escapees: reapEscapees then
// reports hidden, and a later call finds them.
func reapEscapees() (hidden bool) {
	escapeesMu.Lock()
	defer escapeesMu.Unlock()
	self, err := getsid(0)
	if err != nil {
		return false
	}
	for {
		pid := exitedChild()
		if pid <= 0 {
			return false
		}
		if sid, err := getsid(pid); err != nil || sid == self {
			return err == nil
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err != nil && err != syscall.EINTR {
			return false
		}
	}
}

// waitid(2) arguments that package syscall lacks.
const (
	pAll    = 0
	wNowait = 0x1000000
)

// exitedChild returns the pid of a child that has exited and is not yet
// reaped, without reaping it, or 0 if there is none.
func exitedChild() int {
	var info [16]uint64 // a siginfo_t
	_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pAll, 0, uintptr(unsafe.Pointer(&info[0])),
		syscall.WEXITED|syscall.WNOHANG|wNowait, 0, 0)
	if errno != 0 {
		return 0 // ECHILD: no children at all
	}
	// si_pid follows si_signo, si_errno and si_code: at byte 16 where
	// pointers have 8 bytes (the union is aligned to them), else at 12.
	fields := (*[32]int32)(unsafe.Pointer(&info[0]))
	return int(fields[2+unsafe.Sizeof(uintptr(0))/4])
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(sid), nil
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
