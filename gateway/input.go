package gateway

import (
	"errors"
	"time"

	"github.com/wsgate/wsgate/internal/childin"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// reasonInvalidText is the reason of the 1007 that refuses a text message
// that is not UTF-8.
const reasonInvalidText = "invalid UTF-8 in text message"

// errClientGone reports a client that hung up while its child was not
// reading what it had sent.
var errClientGone = errors.New("client hung up")

// deliverRest writes the whole messages still batched when the client's
// side ended with them, by a close frame or a drop that came in the same
// read: they were received, so the child gets them. A child that does not
// read gets wsconn.CloseWait to take them; a session that is closing anyway
// gives them up.
func (s *session) deliverRest(b *childin.Batch, err error) {
	rest := b.Pending()
	if rest == nil || errors.Is(err, errClientGone) || s.ends.ClosingByUs() {
		return
	}
	if err := s.writeLastInput(rest, wsconn.CloseWait); err != nil {
		s.log.Debug("messages not delivered at the client's end", "bytes", len(rest), "err", err)
	}
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
	return s.stdin.WriteLast(buf, wait)
}

// writeStdinTo writes to a child's stdin. A child that does not read blocks
// the write, and so, through TCP, the client: that is the backpressure.
// While blocked, or waiting for another client's write, it wakes every
// stdinCheckInterval to see whether the client has hung up or the session is
// closing, since the socket is not being read and would not tell by itself
// (probeClient).
func (s *session) writeStdinTo(in *process.Stdin, buf []byte) error {
	return s.writeStdinParts(in, buf, nil)
}

// writeStdinParts is writeStdinTo for head then tail, in one turn.
func (s *session) writeStdinParts(in *process.Stdin, head, tail []byte) error {
	if err := in.Take(s.stdinWaiting); err != nil || len(head)+len(tail) == 0 {
		return err
	}
	defer in.Release()
	if err := s.writeTurn(in, head); err != nil {
		return err
	}
	return s.writeTurn(in, tail)
}

// errNotWanted gives up a write to stdin of a session that is closing.
var errNotWanted = errors.New("input no longer wanted")

// writeTurn writes buf to in, whose turn the session holds.
func (s *session) writeTurn(in *process.Stdin, buf []byte) error {
	if len(buf) == 0 || s.ends.ClosingByUs() {
		return nil // the input is no longer wanted
	}
	err := in.Write(buf, s.stdinBlocked)
	switch {
	case errors.Is(err, errNotWanted):
		return nil
	case errors.Is(err, process.ErrStdinClosed):
		s.log.Debug("child stdin closed")
	}
	return err
}

// stdinBlocked is asked every stdinCheckInterval while the child takes
// nothing: the socket is not being read meanwhile and would not tell that
// the client hung up by itself (probeClient).
func (s *session) stdinBlocked() error {
	switch {
	case s.ends.ClosingByUs():
		return errNotWanted
	case wsconn.PeerHungUp(s.raw):
		return errClientGone
	}
	s.probeClient()
	return nil
}

// stdinWaiting is asked every stdinCheckInterval while another client
// writes to the shared stdin.
func (s *session) stdinWaiting() error {
	if s.ends.ClosingByUs() || wsconn.PeerHungUp(s.raw) {
		return errClientGone
	}
	s.probeClient()
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

// countIn counts a message of size bytes taken from the client.
func (s *session) countIn(size int) {
	s.msgsIn.Add(1)
	s.bytesIn.Add(int64(size))
	s.gw.observe.Messages(s.ep.Name, observe.In, 1, int64(size))
}
