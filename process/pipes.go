package process

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// pipeSet holds the three pipes of a child while it is being started.
type pipeSet struct {
	stdin, childStdin   *os.File
	childStdout, stdout *os.File
	childStderr, stderr *os.File
}

// open creates the three pipes. On error the ones made so far stay set, for
// the caller's closes.
func (s *pipeSet) open() error {
	var err error
	if s.childStdin, s.stdin, err = os.Pipe(); err != nil {
		return err
	}
	if s.stdout, s.childStdout, err = os.Pipe(); err != nil {
		return err
	}
	s.stderr, s.childStderr, err = os.Pipe()
	return err
}

// closeChildEnds closes the ends the child inherited: once it has them, the
// parent must not, or it would never see EOF.
func (s *pipeSet) closeChildEnds() {
	closeAll(s.childStdin, s.childStdout, s.childStderr)
}

// closeParentEnds closes the parent's ends, when the child could not start.
func (s *pipeSet) closeParentEnds() {
	closeAll(s.stdin, s.stdout, s.stderr)
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// Output is the parent's read end of a child's stdout or stderr. Once the
// child's group has been swept, a read that waits on an empty pipe reports
// EOF, so that a process that escaped the group cannot hold the reader
// forever. An Output is for one reading goroutine.
type Output struct {
	file  *os.File
	swept *atomic.Bool
}

func newOutput(f *os.File, swept *atomic.Bool) *Output {
	return &Output{file: f, swept: swept}
}

// Read reads what the pipe holds, waiting for output if it holds nothing.
func (o *Output) Read(b []byte) (int, error) {
	if o.swept.Load() {
		o.wake()
	}
	n, err := o.file.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
		err = io.EOF
	}
	return n, err
}

// Ready reports whether a Read would return at once: output, or its end, is
// waiting.
func (o *Output) Ready() bool {
	raw, err := o.file.SyscallConn()
	if err != nil {
		return true
	}
	ready := true
	_ = raw.Control(func(fd uintptr) { ready = readable(fd) })
	return ready
}

// WaitReady waits until a Read would return at once. Waiting this way, rather
// than in Read, lets an idle reader hold no buffer.
func (o *Output) WaitReady() {
	if o.swept.Load() {
		o.wake()
	}
	raw, err := o.file.SyscallConn()
	if err != nil {
		return
	}
	// An error (deadline, closed file) means Read will not wait either.
	_ = raw.Read(func(fd uintptr) bool { return readable(fd) })
}

// wake bounds how long the current or next read waits for data.
func (o *Output) wake() {
	_ = o.file.SetReadDeadline(time.Now().Add(orphanReadWait))
}
