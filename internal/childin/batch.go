// Package childin gathers what clients send on its way to a child's stdin:
// whole messages, each a line in text mode, written together after each
// read of the client's socket, in one system call.
package childin

import (
	"errors"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// ErrInvalidText reports a text message that is not UTF-8.
var ErrInvalidText = errors.New("invalid UTF-8 in text message")

// Limit bounds the decoded bytes a batch holds while it waits for the
// stdin, however many messages one read decodes: 64 KiB of compressed
// frames can inflate to dozens of megabytes. A message that would take the
// batch past it has the batch written first; one bigger than it is written
// by itself, from where the decoder holds it, without a copy. It is the
// most a read turn takes from a socket (wsconn.BatchLimit).
const Limit = wsconn.BatchLimit

// newline ends each message in text mode.
var newline = []byte{'\n'}

// A Batch gathers whole client messages for one write to a child's stdin,
// in a pooled buffer held only while messages wait. It is bounded (Limit):
// writing it blocks while the stdin takes nothing, and so, through TCP,
// holds the client back. Only the client's reader uses it.
type Batch struct {
	// Write writes p then tail to the stdin as one write: nothing another
	// client sends goes between them. process.ErrStdinClosed from it means
	// the child stopped reading: the batch then drops what follows.
	Write func(p, tail []byte) error
	// Lines ends each message with a newline (text mode).
	Lines bool
	// Small starts the buffer small (wsconn.SmallBufferSize), for one of
	// many clients of a broadcast stream; it grows up to the bound.
	Small bool

	buf    *[]byte // nil when empty
	closed bool    // the child stopped reading its stdin
}

// Open reports whether the child still reads its stdin.
func (b *Batch) Open() bool { return !b.closed }

// Add adds one whole message, writing the batch first if the message would
// take it past Limit, and the message too if it is bigger than Limit. Text
// that is not UTF-8 is refused (ErrInvalidText) and not added. It reports
// whether the message was taken: not once the child stopped reading.
func (b *Batch) Add(payload []byte, text bool) (bool, error) {
	if b.closed {
		return false, nil
	}
	if text && !utf8.Valid(payload) {
		return false, ErrInvalidText
	}
	size := len(payload)
	if b.Lines {
		size++
	}
	if b.buf != nil && len(*b.buf)+size > Limit {
		if err := b.Flush(); err != nil || b.closed {
			return true, err
		}
	}
	if size > Limit { // too big for any batch: written as it is, not copied
		if b.Lines {
			return true, b.write(payload, newline)
		}
		return true, b.write(payload, nil)
	}
	if b.buf == nil && b.Small {
		b.buf = wsconn.GetSmallBuffer()
	} else if b.buf == nil {
		b.buf = wsconn.GetBuffer()
	}
	*b.buf = append(*b.buf, payload...)
	if b.Lines {
		*b.buf = append(*b.buf, '\n')
	}
	return true, nil
}

// Flush writes the batched messages.
func (b *Batch) Flush() error {
	if b.buf == nil {
		return nil
	}
	err := b.write(*b.buf, nil)
	b.Release()
	return err
}

// Pending returns the messages batched and not yet written, when the child
// still reads: what a client that left in the same read is still owed.
func (b *Batch) Pending() []byte {
	if b.buf == nil || b.closed {
		return nil
	}
	return *b.buf
}

// Release gives the buffer back to the pool, with what it still holds.
func (b *Batch) Release() {
	if b.buf != nil {
		wsconn.PutBuffer(b.buf)
		b.buf = nil
	}
}

// write writes p then tail, unless the child stopped reading: then what
// follows is dropped.
func (b *Batch) write(p, tail []byte) error {
	if b.closed || len(p)+len(tail) == 0 {
		return nil
	}
	err := b.Write(p, tail)
	if errors.Is(err, process.ErrStdinClosed) {
		b.closed = true
		return nil
	}
	return err
}
