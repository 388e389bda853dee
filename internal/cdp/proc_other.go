//go:build !unix

package cdp

import (
	"os"
	"syscall"
	"time"
)

// procAttr returns nil: process groups are a Unix notion.
func procAttr() *syscall.SysProcAttr {
	return nil
}

// killGroup kills the browser process itself; there is no group to kill.
func killGroup(p *os.Process) {
	p.Kill()
}

// awaitGroupGone has nothing to wait for without process groups.
func awaitGroupGone(*os.Process, time.Duration) {}
