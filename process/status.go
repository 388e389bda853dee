package process

import (
	"fmt"
	"syscall"
)

// Status is how a child ended.
type Status struct {
	// Code is the exit code, or -1 when the child was killed by a signal.
	Code int
	// Signal is the signal that killed the child, or 0.
	Signal syscall.Signal
}

// Success reports whether the child exited with status 0.
func (s Status) Success() bool { return s.Code == 0 && s.Signal == 0 }

// String describes the status the way the close reason shows it:
// "exit status N" or "signal: NAME".
func (s Status) String() string {
	if s.Signal != 0 {
		return "signal: " + s.Signal.String()
	}
	return fmt.Sprintf("exit status %d", s.Code)
}

func statusOf(ws syscall.WaitStatus) Status {
	if ws.Signaled() {
		return Status{Code: -1, Signal: ws.Signal()}
	}
	return Status{Code: ws.ExitStatus()}
}
