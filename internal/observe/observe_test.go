package observe

import (
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/process"
)

func TestExitLabelIsBounded(t *testing.T) {
	for _, c := range []struct {
		status process.Status
		want   string
	}{
		{process.Status{Code: 0}, "0"},
		{process.Status{Code: 3}, "3"},
		{process.Status{Code: MaxExitLabel}, "8"},
		{process.Status{Code: MaxExitLabel + 1}, "other"},
		{process.Status{Code: 255}, "other"},
		{process.Status{Code: -1, Signal: syscall.SIGTERM}, "SIGTERM"},
		{process.Status{Code: -1, Signal: syscall.SIGKILL}, "SIGKILL"},
		{process.Status{Code: -1, Signal: syscall.SIGSEGV}, "SIGSEGV"},
		{process.Status{Code: -1, Signal: syscall.SIGUSR1}, "signal"},
		{process.Status{Code: -1, Signal: syscall.Signal(60)}, "signal"},
	} {
		if got := ExitLabel(c.status); got != c.want {
			t.Errorf("ExitLabel(%v) = %q, want %q", c.status, got, c.want)
		}
	}
}
