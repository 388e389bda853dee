package process

import (
	"errors"
	"os"
	"time"
)

// ErrStdinClosed reports a child that no longer reads its stdin.
var ErrStdinClosed = errors.New("child's stdin closed")

// Stdin is a child's stdin as its writers share it: one in per-connection
// mode, every client of a broadcast stream in broadcast mode. A writer takes
// its turn, writes whole what it has, and gives the turn back, so that what
// one writer sent is never interleaved with what another did. A write the
// child does not take blocks, and so holds its writer back (backpressure);
// while it waits, for its turn or for the child, it wakes every check
// interval and asks the writer whether to go on.
type Stdin struct {
	file     *os.File
	check    time.Duration
	turn     chan struct{} // holds a token while a writer has its turn
	deadline time.Time     // when a blocked write next wakes; the holder's
}

// NewStdin returns the shared stdin of file, whose waits wake every check.
func NewStdin(file *os.File, check time.Duration) *Stdin {
	return &Stdin{file: file, check: check, turn: make(chan struct{}, 1)}
}

// Take waits for the writer's turn. While another writer holds it, waiting
// is called every check interval; an error from it gives up, and Take
// returns it.
func (in *Stdin) Take(waiting func() error) error {
	select {
	case in.turn <- struct{}{}:
		return nil
	default:
	}
	tick := time.NewTicker(in.check)
	defer tick.Stop()
	for {
		select {
		case in.turn <- struct{}{}:
			return nil
		case <-tick.C:
			if err := waiting(); err != nil {
				return err
			}
		}
	}
}

// Release gives the turn back.
func (in *Stdin) Release() { <-in.turn }

// Write writes p whole in the turn the writer holds. While the child takes
// nothing, blocked is called every check interval: an error from it gives
// up, and Write returns it. It returns ErrStdinClosed once the child no
// longer reads its stdin.
func (in *Stdin) Write(p []byte, blocked func() error) error {
	for len(p) > 0 {
		in.pushDeadline()
		n, err := in.file.Write(p)
		p = p[n:]
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return ErrStdinClosed
		}
		if err := blocked(); err != nil {
			return err
		}
	}
	return nil
}

// WriteLast writes p within wait, if the turn comes within wait: for what a
// client sent as it left.
func (in *Stdin) WriteLast(p []byte, wait time.Duration) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case in.turn <- struct{}{}:
	case <-timer.C:
		return os.ErrDeadlineExceeded
	}
	defer in.Release()
	in.deadline = time.Now().Add(wait)
	_ = in.file.SetWriteDeadline(in.deadline)
	_, err := in.file.Write(p)
	return err
}

// WriteUntil writes p whole, in its turn, unless stop is closed first or
// the child stops reading its stdin (ErrStdinClosed either way).
func (in *Stdin) WriteUntil(p []byte, stop <-chan struct{}) error {
	select {
	case in.turn <- struct{}{}:
	case <-stop:
		return ErrStdinClosed
	}
	defer in.Release()
	return in.Write(p, func() error {
		select {
		case <-stop:
			return ErrStdinClosed
		default:
			return nil
		}
	})
}

// pushDeadline sets the next wake-up of a blocked write, at most once per
// half interval, since it is called for every write.
func (in *Stdin) pushDeadline() {
	now := time.Now()
	if now.After(in.deadline.Add(-in.check / 2)) {
		in.deadline = now.Add(in.check)
		_ = in.file.SetWriteDeadline(in.deadline)
	}
}
