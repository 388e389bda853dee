//go:build unix && !linux

package testrun

import "syscall"

// diesWithTheTest asks for nothing: only Linux has a parent-death signal, so
// a server outlives a test process that dies without stopping it.
func diesWithTheTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
