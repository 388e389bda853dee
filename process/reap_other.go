//go:build !linux

package process

// becomeSubreaper is a no-op where the system has no child subreapers.
func becomeSubreaper() {}

// reapGroup is a no-op where orphans cannot be ours to reap.
func reapGroup(pgid int) {}
