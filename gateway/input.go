package gateway

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// errInvalidText reports a client text message that is not UTF-8.
var errInvalidText = errors.New("invalid UTF-8 in text message")

// errMessageTooBig reports a client message over the limit once
// decompressed: gorilla's read limit counts the bytes on the wire.
var errMessageTooBig = errors.New("message too big")

// errClientGone reports a client that hung up while its child was not
// reading what it had sent.
var errClientGone = errors.New("client hung up")

// copyInput is the only reader of the connection: it writes each client
// message to the child's stdin until the client closes, drops or is dropped,
// and then returns why. Messages that arrive together are written together,
// in one system call.
func (s *session) copyInput() error {
	in := stdinBatch{s: s, open: true, whole: s.member != nil}
	defer in.release()
	for {
		if !wholeMessageBuffered(s.clientReader) {
			if err := in.flush(); err != nil {
				return err
			}
		}
		msgType, r, err := s.conn.NextReader()
		if err != nil {
			in.deliverRest(err)
			return err
		}
		s.heard()
		err = in.add(r, msgType == websocket.TextMessage)
		if code, reason := messageRefusal(err); code != 0 {
			if err := in.flush(); err != nil { // the messages before it were whole
				return err
			}
			s.log.Info("client message refused", "remote", s.remote, "reason", reason)
			s.closeWith(code, reason)
		} else if err != nil {
			return err
		}
	}
}

// messageRefusal returns the close code and reason for a client message that add
// refused, or 0.
func messageRefusal(err error) (int, string) {
	switch {
	case errors.Is(err, errInvalidText):
		return websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in text message"
	case errors.Is(err, errMessageTooBig):
		return websocket.CloseMessageTooBig, "message too big"
	}
	return 0, ""
}

// stdinBatch gathers whole client messages, each as a line in text mode, for
// one write to the child's stdin, in a pooled buffer held only while
// messages wait. A message too big for the buffer is written as it is read,
// after the ones before it, unless whole: a shared stdin takes every message
// whole, so the buffer grows instead, and starts small (see smallBufferSize).
type stdinBatch struct {
	s     *session
	buf   *[]byte // nil when empty
	open  bool    // the child still reads its stdin: else messages are dropped
	whole bool
}

// add reads one message into the batch. On an error, only the whole
// messages before it stay.
func (b *stdinBatch) add(r io.Reader, text bool) (err error) {
	if !b.open || b.s.ends.closingByUs() {
		_, err := io.Copy(io.Discard, r) // the child stopped reading, or the session is closing
		return err
	}
	if b.buf == nil && b.whole {
		b.buf = getSmallBuffer()
	} else if b.buf == nil {
		b.buf = getBuffer()
	}
	start, size := len(*b.buf), 0
	defer func() {
		if err != nil {
			*b.buf = (*b.buf)[:start]
		}
	}()
	for {
		if len(*b.buf) == cap(*b.buf) {
			if b.whole {
				*b.buf = slices.Grow(*b.buf, len(*b.buf)) // the size check below bounds it
			} else if start, err = b.makeRoom(start, text); err != nil {
				return err
			}
		}
		buf := *b.buf
		n, err := r.Read(buf[len(buf):cap(buf)])
		*b.buf, size = buf[:len(buf)+n], size+n
		if int64(size) > b.s.gw.cfg.MaxMessageSize {
			return errMessageTooBig
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if text && !utf8.Valid((*b.buf)[start:]) {
		return errInvalidText
	}
	b.s.msgsIn.Add(1)
	b.s.bytesIn.Add(int64(size))
	b.s.gw.observe.Messages(b.s.ep.Name, In, 1, int64(size))
	if b.s.gw.cfg.Binary {
		return nil
	}
	if len(*b.buf) == cap(*b.buf) && !b.whole {
		if err := b.write(*b.buf); err != nil {
			return err
		}
		*b.buf = (*b.buf)[:0]
	}
	*b.buf = append(*b.buf, '\n')
	return nil
}

// makeRoom writes out the front of a full buffer and returns where the
// current message now starts: the messages before it go if there are any,
// else the checked part of the message itself.
func (b *stdinBatch) makeRoom(start int, text bool) (int, error) {
	buf := *b.buf
	cut := start
	if cut == 0 {
		cut = len(buf)
		if text {
			cut = runeCut(buf)
			if !utf8.Valid(buf[:cut]) {
				return 0, errInvalidText
			}
		}
	}
	if err := b.write(buf[:cut]); err != nil {
		return 0, err
	}
	*b.buf = buf[:copy(buf, buf[cut:])]
	return 0, nil
}

// flush writes the batched messages.
func (b *stdinBatch) flush() error {
	if b.buf == nil {
		return nil
	}
	err := b.write(*b.buf)
	b.release()
	return err
}

// write writes to stdin, unless the child stopped reading it: then what
// follows is dropped.
func (b *stdinBatch) write(p []byte) error {
	if !b.open || len(p) == 0 {
		return nil
	}
	err := b.s.writeStdin(p)
	if errors.Is(err, errStdinClosed) {
		b.open = false
		return nil
	}
	return err
}

// deliverRest writes the whole messages still batched when the client's
// side ended with them, by a close frame or a drop that came in the same
// read: they were received, so the child gets them. A child that does not
// read gets closeWait to take them; a session that is closing anyway gives
// them up.
func (b *stdinBatch) deliverRest(err error) {
	if b.buf == nil || !b.open || errors.Is(err, errClientGone) || b.s.ends.closingByUs() {
		return
	}
	if err := b.s.writeLastInput(*b.buf, closeWait); err != nil {
		b.s.log.Debug("messages not delivered at the client's end", "bytes", len(*b.buf), "err", err)
	}
}

// release gives the buffer back to the pool.
func (b *stdinBatch) release() {
	if b.buf != nil {
		putBuffer(b.buf)
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

// writeStdin writes to the child's stdin, or a stream's on a bus.
func (s *session) writeStdin(buf []byte) error {
	if s.member != nil && s.member.bs != nil {
		return s.member.bs.input(s, buf)
	}
	return s.writeStdinTo(s.stdin, buf)
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
	if err := s.waitStdinTurn(in); err != nil || len(buf) == 0 {
		return err
	}
	defer func() { <-in.turn }()
	for {
		if s.ends.closingByUs() {
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
		case peerHungUp(s.raw):
			return errClientGone
		default:
			s.probeClient()
		}
	}
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
	s.wire.control(controlFrame(opPong, nil))
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
			if s.ends.closingByUs() || peerHungUp(s.raw) {
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

// runeCut returns the length of data without a trailing incomplete UTF-8
// character.
func runeCut(data []byte) int {
	end := len(data)
	for i := end - 1; i >= 0 && i >= end-utf8.UTFMax; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:end]) {
				return i
			}
			break
		}
	}
	return end
}

// wholeMessageBuffered reports whether the client's next message is already
// in br, so that reading it will not wait on the network: its frames, and
// any control frames before or among them, are buffered whole.
func wholeMessageBuffered(br *bufio.Reader) bool {
	if br == nil {
		return false
	}
	buffered, _ := br.Peek(br.Buffered()) // within what is buffered: no read
	for len(buffered) > 0 {
		size, ok := frameSize(buffered)
		if !ok {
			return false
		}
		op, fin := buffered[0]&0x0f, buffered[0]&finBit != 0
		if fin && op < opClose { // the last frame of a data message
			return true
		}
		buffered = buffered[size:]
	}
	return false
}

// frameSize returns the size of the client frame at the start of b, header
// and payload, and whether it is all in b.
func frameSize(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	length, at := uint64(b[1]&0x7f), 2
	switch length {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		length, at = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		length, at = binary.BigEndian.Uint64(b[2:]), 10
	}
	if b[1]&0x80 != 0 {
		at += 4 // the mask
	}
	if at > len(b) || length > uint64(len(b)-at) {
		return 0, false
	}
	return at + int(length), true
}
