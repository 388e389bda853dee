//go:build unix && (!linux || wsgate_portable)

package process

// The portable backend is no subreaper: macOS has no such thing, FreeBSD's
// (procctl PROC_REAP_ACQUIRE) is not used, and on Linux under the tag it is
// left out so that the backend is tested as it runs elsewhere. What is
// lost: a grandchild that outlives its child (it left the group with
// setsid, or survived the group's SIGKILL as a zombie's orphan) is
// reparented to init and reaped there, not by wsgate; one that setsid'd
// away may run on after its session, as it may under websocketd.

// becomeSubreaper does nothing: see above.
func becomeSubreaper() {}

// reapEscapees reaps nothing: orphans are init's.
func reapEscapees() (hidden bool) { return false }
