package gateway

import (
	"errors"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/wsconn"
	"os"
	"time"
	"unicode/utf8"
)

// errInvalidText reports a client text message that is not UTF-8.
var errInvalidText = errors.New("invalid UTF-8 in text message")

// reasonInvalidText is the reason of the 1007 that refuses it.
const reasonInvalidText = "invalid UTF-8 in text message"

// errClientGone reports a client that hung up while its child was not
// reading what it had sent.
var errClientGone = errors.New("client hung up")

// maxStdinBatch bounds the decoded bytes a batch of client messages holds
// while it waits for the stdin, however many messages one read decodes: 64
// KiB of compressed frames can inflate to dozens of megabytes. A message
// that would take the batch past the bound has the batch written first; one
// bigger than the bound is written by itself, from where the decoder holds
// it, without a copy.
const maxStdinBatch = wsconn.BatchLimit

// stdinBatch gathers whole client messages, each as a line in text mode,
// for one write to the child's stdin, in a pooled buffer held only while
// messages wait. It is bounded (maxStdinBatch): writing it blocks while the
// stdin takes nothing, and so, through TCP, holds the client back. A
// member's buffer starts small (see wsconn.SmallBufferSize) and grows up to the
// bound.
type stdinBatch struct {
	s     *session
	buf   *[]byte // nil when empty
	open  bool    // the child still reads its stdin: else messages are dropped
	small bool
}

// add adds one whole message to the batch, writing the batch first if the
// message would take it past its bound, and the message too if it is bigger
// than the bound. Text that is not UTF-8 is refused (errInvalidText) and
// not added.
func (b *stdinBatch) add(payload []byte, text bool) error {
	if !b.open || b.s.ends.ClosingByUs() {
		return nil // the child stopped reading, or the session is closing
	}
	if text && !utf8.Valid(payload) {
		return errInvalidText
	}
	b.s.msgsIn.Add(1)
	b.s.bytesIn.Add(int64(len(payload)))
	b.s.gw.observe.Messages(b.s.ep.Name, In, 1, int64(len(payload)))
	line := !b.s.gw.cfg.Binary
	size := len(payload)
	if line {
		size++
	}
	if b.buf != nil && len(*b.buf)+size > maxStdinBatch {
		if err := b.flush(); err != nil || !b.open {
			return err
		}
	}
	if size > maxStdinBatch { // too big for any batch: written as it is, not copied
		if line {
			return b.write(payload, newline)
		}
		return b.write(payload, nil)
	}
	if b.buf == nil && b.small {
		b.buf = wsconn.GetSmallBuffer()
	} else if b.buf == nil {
		b.buf = wsconn.GetBuffer()
	}
	*b.buf = append(*b.buf, payload...)
	if line {
		*b.buf = append(*b.buf, '\n')
	}
	return nil
}

// flush writes the batched messages.
func (b *stdinBatch) flush() error {
	if b.buf == nil {
		return nil
	}
	err := b.write(*b.buf, nil)
	b.release()
	return err
}

// newline ends each message in text mode.
var newline = []byte{'\n'}

// write writes p then tail to stdin, unless the child stopped reading it:
// then what follows is dropped.
func (b *stdinBatch) write(p, tail []byte) error {
	if !b.open || len(p)+len(tail) == 0 {
		return nil
	}
	err := b.s.writeStdin(p, tail)
	if errors.Is(err, errStdinClosed) {
		b.open = false
		return nil
	}
	return err
}

// deliverRest writes the whole messages still batched when the client's
// side ended with them, by a close frame or a drop that came in the same
// read: they were received, so the child gets them. A child that does not
// read gets wsconn.CloseWait to take them; a session that is closing anyway gives
// them up.
func (b *stdinBatch) deliverRest(err error) {
	if b.buf == nil || !b.open || errors.Is(err, errClientGone) || b.s.ends.ClosingByUs() {
		return
	}
	if err := b.s.writeLastInput(*b.buf, wsconn.CloseWait); err != nil {
		b.s.log.Debug("messages not delivered at the client's end", "bytes", len(*b.buf), "err", err)
	}
	b.release()
}

// release gives the buffer back to the pool.
func (b *stdinBatch) release() {
	if b.buf != nil {
		wsconn.PutBuffer(b.buf)
		b.buf = nil
	}
}

// errStdinClosed marks a child that no longer reads its stdin.
var errStdinClosed = errors.New("child's stdin closed")

// childStdin is a child's stdin as its clients' readers write it: one
// reader in per-connection mode, every member's in broadcast mode. A write
// holds it whole, so that what one client sent is never interleaved with
// what another did.
type childStdin struct {
	file     *os.File
	turn     chan struct{} // holds a token while a write is under way
	deadline time.Time     // when a blocked write next wakes; the holder's
}

func newChildStdin(file *os.File) *childStdin {
	return &childStdin{file: file, turn: make(chan struct{}, 1)}
}

// writeStdin writes head then tail to the child's stdin, or a stream's on
// a bus, as one write: nothing another client sends goes between them.
func (s *session) writeStdin(head, tail []byte) error {
	if s.member != nil && s.member.bs != nil {
		if len(tail) > 0 {
			head = append(head[:len(head):len(head)], tail...) // the bus takes one piece
		}
		return s.member.bs.input(s, head)
	}
	return s.writeStdinParts(s.stdin, head, tail)
}

// writeLastInput writes what the client sent as it left, within wait.
func (s *session) writeLastInput(buf []byte, wait time.Duration) error {
	if s.member != nil && s.member.bs != nil {
		return s.member.bs.lastInput(buf, wait)
	}
	return s.stdin.writeLast(buf, wait)
}

// writeStdinTo writes to a child's stdin. A child that does not read blocks
// the write, and so, through TCP, the client: that is the backpressure.
// While blocked, or waiting for another client's write, it wakes every
// stdinCheckInterval to see whether the client has hung up or the session is
// closing, since the socket is not being read and would not tell by itself
// (probeClient).
func (s *session) writeStdinTo(in *childStdin, buf []byte) error {
	return s.writeStdinParts(in, buf, nil)
}

// writeStdinParts is writeStdinTo for head then tail, in one turn.
func (s *session) writeStdinParts(in *childStdin, head, tail []byte) error {
	if err := s.waitStdinTurn(in); err != nil || len(head)+len(tail) == 0 {
		return err
	}
	defer func() { <-in.turn }()
	if err := s.writeTurn(in, head); err != nil {
		return err
	}
	return s.writeTurn(in, tail)
}

// writeTurn writes buf to in, whose turn the session holds.
func (s *session) writeTurn(in *childStdin, buf []byte) error {
	for len(buf) > 0 {
		if s.ends.ClosingByUs() {
			return nil // the input is no longer wanted
		}
		in.pushDeadline()
		n, err := in.file.Write(buf)
		buf = buf[n:]
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			s.log.Debug("child stdin closed", "err", err)
			return errStdinClosed
		case wsconn.PeerHungUp(s.raw):
			return errClientGone
		default:
			s.probeClient()
		}
	}
	return nil
}

// probeClient sends the client an unsolicited pong (RFC 6455 5.5.3: a
// heartbeat that needs no answer), so that a client that has left makes
// its socket say so. A client that closed its socket while its writes were
// blocked on our full receive window left its FIN queued behind the data
// that the window holds back: measured, its side sits in FIN-WAIT-1 with
// megabytes unsent and ours in ESTABLISHED with a full receive queue, so
// poll shows no hang-up, and without pings (or until the next one) the
// child ran on. Data reaching a socket its owner has closed draws a reset,
// which peerHungUp sees at the next check. A client still there ignores the
// pong; one at a time is queued (wire.control).
func (s *session) probeClient() {
	s.wire.Control(frames.ControlFrame(frames.OpPong, nil))
}

// waitStdinTurn waits until no other client writes to the shared stdin.
func (s *session) waitStdinTurn(in *childStdin) error {
	select {
	case in.turn <- struct{}{}:
		return nil
	default:
	}
	tick := time.NewTicker(stdinCheckInterval)
	defer tick.Stop()
	for {
		select {
		case in.turn <- struct{}{}:
			return nil
		case <-tick.C:
			if s.ends.ClosingByUs() || wsconn.PeerHungUp(s.raw) {
				return errClientGone
			}
			s.probeClient()
		}
	}
}

// pushDeadline sets the next wake-up of a blocked write, at most once per
// half interval, since it is called for every write.
func (in *childStdin) pushDeadline() {
	now := time.Now()
	if now.After(in.deadline.Add(-stdinCheckInterval / 2)) {
		in.deadline = now.Add(stdinCheckInterval)
		_ = in.file.SetWriteDeadline(in.deadline)
	}
}

// writeLast writes p within wait, if its turn comes within wait.
func (in *childStdin) writeLast(p []byte, wait time.Duration) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case in.turn <- struct{}{}:
	case <-timer.C:
		return os.ErrDeadlineExceeded
	}
	defer func() { <-in.turn }()
	in.deadline = time.Now().Add(wait)
	_ = in.file.SetWriteDeadline(in.deadline)
	_, err := in.file.Write(p)
	return err
}

// writeUntil writes p whole, in its turn, unless stop is closed first or
// the child stops reading its stdin: for input from another instance.
func (in *childStdin) writeUntil(p []byte, stop <-chan struct{}) error {
	select {
	case in.turn <- struct{}{}:
	case <-stop:
		return errStdinClosed
	}
	defer func() { <-in.turn }()
	for {
		in.pushDeadline()
		n, err := in.file.Write(p)
		p = p[n:]
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return errStdinClosed
		}
		select {
		case <-stop:
			return errStdinClosed
		default:
		}
	}
}
