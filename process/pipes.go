package process

import (
	"errors"
	"io"
	"os"
	"sync"
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

// outputPipe is the parent's read end of stdout or stderr. It reports the
// first EOF to its owner, and once the group has been swept it turns a read
// that waits on an empty pipe into EOF, so that a process that escaped the
// group cannot hold the reader forever.
type outputPipe struct {
	file    *os.File
	swept   *atomic.Bool
	eofOnce sync.Once
	onEOF   func()
}

func newOutputPipe(f *os.File, swept *atomic.Bool, onEOF func()) *outputPipe {
	return &outputPipe{file: f, swept: swept, onEOF: onEOF}
}

// Read reads from the pipe. It is for one goroutine at a time.
func (o *outputPipe) Read(b []byte) (int, error) {
	if o.swept.Load() {
		o.wake()
	}
	n, err := o.file.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
		err = io.EOF
	}
	if err == io.EOF {
		o.eofOnce.Do(o.onEOF)
	}
	return n, err
}

// wake bounds how long the current or next read waits for data.
func (o *outputPipe) wake() {
	_ = o.file.SetReadDeadline(time.Now().Add(orphanReadWait))
}
