//go:build unix && !linux

package cdp

import "syscall"

// procAttr puts the browser in its own process group, so that Close can
// kill its helper processes too.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
