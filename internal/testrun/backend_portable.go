//go:build unix && (!linux || wsgate_portable)

package testrun

import "testing"

// PortableBackend reports whether wsgate is built with the portable process
// backend (the wsgate_portable tag, or any other system than Linux).
const PortableBackend = true

// LinuxOnlyPromise marks a test of what only the Linux backend promises
// (pidfd, the child subreaper, the parent-death signal): it runs with the
// Linux backend and is skipped, saying why, with the portable one. The
// README lists these tests.
func LinuxOnlyPromise(t testing.TB, why string) {
	t.Helper()
	t.Skip("a Linux-only promise, not kept by the portable backend: " + why)
}
