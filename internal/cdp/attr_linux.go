package cdp

import "syscall"

// procAttr puts the browser in its own process group, so that Close can
// kill its helper processes too, and has the kernel kill it if the test
// process dies without calling Close.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
