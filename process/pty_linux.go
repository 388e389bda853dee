package process

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// TerminalStdoutOffered reports whether Spec.TerminalStdout can be had:
// only on Linux.
const TerminalStdoutOffered = true

// openTerminal opens a pseudo-terminal for a child's stdout and returns its
// master, the parent's end, and its slave, the child's. Both are
// close-on-exec, and neither becomes a controlling terminal (O_NOCTTY): the
// child gets the slave as its stdout only, it is not made a session leader,
// and so the terminal sends it no SIGHUP, SIGINT or SIGTTOU. The slave is
// put in raw mode (see makeRaw), so that the master reads exactly the bytes
// the child wrote. Once every copy of the slave is closed, reading the
// master fails with EIO: that is the end of the output, as EOF is for a
// pipe.
//
// The system calls are made directly rather than through a library such as
// github.com/creack/pty: this is all of what wsgate needs of one (no
// controlling terminal, no window size, no Setsid), and package process
// stays on the standard library.
func openTerminal() (master, slave int, err error) {
	master, err = syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, os.NewSyscallError("open /dev/ptmx", err)
	}
	name, err := unlockSlave(master)
	if err == nil {
		slave, err = syscall.Open(name, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
		if err != nil {
			err = os.NewSyscallError("open "+name, err)
		}
	}
	if err == nil {
		if err = makeRaw(slave); err != nil {
			syscall.Close(slave)
		}
	}
	if err != nil {
		syscall.Close(master)
		return -1, -1, err
	}
	return master, slave, nil
}

// unlockSlave unlocks the slave of master (unlockpt) and returns its path
// (ptsname).
func unlockSlave(master int) (string, error) {
	var unlock int32 // 0: unlocked
	if err := ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		return "", os.NewSyscallError("ioctl TIOCSPTLCK", err)
	}
	var n uint32
	if err := ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		return "", os.NewSyscallError("ioctl TIOCGPTN", err)
	}
	return "/dev/pts/" + strconv.FormatUint(uint64(n), 10), nil
}

// makeRaw sets the terminal fd to raw mode as cfmakeraw(3) does: no output
// processing (no "\r" before "\n"), no echo, no canonical line editing, no
// signal characters, no input translation, 8-bit characters. Of all that,
// what matters for a stdout is OPOST: with it off, every byte the child
// writes reaches the master as it is, NUL and 0xff included.
func makeRaw(fd int) error {
	var t syscall.Termios
	if err := ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)); err != nil {
		return os.NewSyscallError("ioctl TCGETS", err)
	}
	t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP |
		syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	t.Oflag &^= syscall.OPOST
	t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	t.Cflag &^= syscall.CSIZE | syscall.PARENB
	t.Cflag |= syscall.CS8
	t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
	if err := ioctl(fd, syscall.TCSETS, unsafe.Pointer(&t)); err != nil {
		return os.NewSyscallError("ioctl TCSETS", err)
	}
	return nil
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
