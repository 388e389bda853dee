//go:build unix && !linux

package pollnow

import "golang.org/x/sys/unix"

// poll(2) events, the same values on the BSDs and macOS as on Linux. There
// is no portable RDHUP: a peer that shut down only its sending side is seen
// once it has hung up altogether (Hup), or by a read.
const (
	In    = unix.POLLIN
	Err   = unix.POLLERR
	Hup   = unix.POLLHUP
	RdHup = 0
)

// Events returns which of events, and of Err and Hup (always reported), fd
// has right now.
func Events(fd uintptr, events int16) (int16, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(fds, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, nil
		}
		return fds[0].Revents, nil
	}
}
