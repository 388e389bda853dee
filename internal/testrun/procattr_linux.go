package testrun

import "syscall"

// diesWithTheTest has the kernel kill a server if the test process dies
// without stopping it.
func diesWithTheTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
