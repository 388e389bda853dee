package gateway

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// errInvalidText reports a client text message that is not UTF-8.
var errInvalidText = errors.New("invalid UTF-8 in text message")

// errClientGone reports a client that hung up while its child was not
// reading what it had sent.
var errClientGone = errors.New("client hung up")

// copyInput is the only reader of the connection: it writes each client
// message to the child's stdin until the client closes, drops or falls
// silent, and then returns why. Messages that arrive together are written
// together, in one system call, from a pooled buffer.
func (s *session) copyInput() (err error) {
	var batch *[]byte
	stdinOpen := true
	defer func() {
		if batch == nil {
			return
		}
		if stdinOpen && !errors.Is(err, errClientGone) {
			s.deliverRest(*batch)
		}
		putBuffer(batch)
	}()
	for {
		if batch != nil && !wholeFrameBuffered(s.clientReader) {
			if err := s.writeBatch(batch, &stdinOpen); err != nil {
				return err
			}
			putBuffer(batch)
			batch = nil
		}
		s.extendReadDeadline(false)
		msgType, r, err := s.conn.NextReader()
		if err != nil {
			return err
		}
		if s.isClosing() || !stdinOpen {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
			continue // waiting for the close handshake, or the child stopped reading
		}
		if batch == nil {
			batch = getBuffer()
		}
		err = s.readInput(r, batch, msgType == websocket.TextMessage)
		switch {
		case errors.Is(err, errInvalidText):
			if err := s.writeBatch(batch, &stdinOpen); err != nil { // the messages before it were whole
				return err
			}
			*batch = (*batch)[:0]
			s.log.Info("client sent invalid UTF-8", "remote", s.remote)
			s.sendClose(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in text message")
		case errors.Is(err, errClientGone):
			return err
		case errors.Is(err, errStdinClosed):
			stdinOpen = false
		case err != nil:
			return err
		}
	}
}

// deliverRest writes the whole messages still batched when the client's side
// ended, by a close frame or a drop that came with them: they were received,
// so the child gets them. A child that does not read gets closeWait to take
// them; a session that is closing anyway gives them up.
func (s *session) deliverRest(batch []byte) {
	if len(batch) == 0 {
		return
	}
	stdin := s.proc.Stdin()
	s.deadlineMu.Lock()
	closing := s.closing
	if !closing {
		_ = stdin.SetWriteDeadline(time.Now().Add(closeWait))
	}
	s.deadlineMu.Unlock()
	if closing {
		return
	}
	if _, err := stdin.Write(batch); err != nil {
		s.log.Debug("messages not delivered at the client's end", "bytes", len(batch), "err", err)
	}
}

// errStdinClosed marks a child that no longer reads its stdin.
var errStdinClosed = errors.New("child's stdin closed")

// writeBatch writes the batch to stdin unless the child stopped reading.
func (s *session) writeBatch(batch *[]byte, stdinOpen *bool) error {
	if !*stdinOpen || len(*batch) == 0 {
		return nil
	}
	err := s.writeStdin(*batch)
	if errors.Is(err, errStdinClosed) {
		*stdinOpen = false
		return nil
	}
	return err
}

// readInput reads one client message into the batch, with a newline in
// text mode. What does not fit is written to stdin as it comes: first the
// messages before it, then the message itself, so that a message of any
// size needs no more memory than a batch.
func (s *session) readInput(r io.Reader, batch *[]byte, text bool) (err error) {
	start, size := len(*batch), 0
	defer func() {
		if err != nil {
			*batch = (*batch)[:start] // only whole messages stay batched
		}
	}()
	for {
		b := *batch
		if len(b) == cap(b) {
			n, err := s.makeRoom(b, start, text)
			if err != nil {
				return err
			}
			b, start = b[:n], 0
		}
		n, err := r.Read(b[len(b):cap(b)])
		*batch, size = b[:len(b)+n], size+n
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if text && !utf8.Valid((*batch)[start:]) {
		return errInvalidText
	}
	s.msgsIn.Add(1)
	s.bytesIn.Add(int64(size))
	if s.gw.cfg.Binary {
		return nil
	}
	if len(*batch) == cap(*batch) {
		if err := s.writeStdin(*batch); err != nil {
			return err
		}
		*batch = (*batch)[:0]
	}
	*batch = append(*batch, '\n')
	return nil
}

// makeRoom writes out the front of a full batch and returns the length of
// what is left: the messages before the current one if there are any,
// else the checked part of the current message.
func (s *session) makeRoom(b []byte, start int, text bool) (int, error) {
	cut := start
	if cut == 0 {
		cut = len(b)
		if text {
			cut = runeCut(b)
			if !utf8.Valid(b[:cut]) {
				return 0, errInvalidText
			}
		}
	}
	if err := s.writeStdin(b[:cut]); err != nil {
		return 0, err
	}
	return copy(b, b[cut:]), nil
}

// writeStdin writes to the child's stdin. A child that does not read blocks
// the write, and so, through TCP, the client: that is the backpressure.
// While blocked, the write wakes every stdinCheckInterval to see whether the
// client has hung up or the session is closing, since the socket is not
// being read and would not tell.
func (s *session) writeStdin(buf []byte) error {
	stdin := s.proc.Stdin()
	for {
		if !s.pushStdinDeadline() {
			return nil // closing: the input is no longer wanted
		}
		n, err := stdin.Write(buf)
		buf = buf[n:]
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			s.log.Debug("child stdin closed", "err", err)
			return errStdinClosed
		case peerHungUp(s.raw):
			return errClientGone
		}
	}
}

// pushStdinDeadline sets the next stdin wake-up, unless the session is
// closing; it reports whether the write should go on.
func (s *session) pushStdinDeadline() bool {
	s.deadlineMu.Lock()
	defer s.deadlineMu.Unlock()
	if s.closing {
		return false
	}
	now := time.Now()
	if now.After(s.stdinDeadline.Add(-stdinCheckInterval / 2)) {
		s.stdinDeadline = now.Add(stdinCheckInterval)
		_ = s.proc.Stdin().SetWriteDeadline(s.stdinDeadline)
	}
	return true
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

// wholeFrameBuffered reports whether the client's next WebSocket frame is
// already in br, so that reading it will not wait on the network.
func wholeFrameBuffered(br *bufio.Reader) bool {
	if br == nil {
		return false
	}
	n := br.Buffered()
	if n < 2 {
		return false
	}
	h, _ := br.Peek(n) // within what is buffered: no read
	length, at := uint64(h[1]&0x7f), 2
	switch length {
	case 126:
		if n < 4 {
			return false
		}
		length, at = uint64(binary.BigEndian.Uint16(h[2:])), 4
	case 127:
		if n < 10 {
			return false
		}
		length, at = binary.BigEndian.Uint64(h[2:]), 10
	}
	if h[1]&0x80 != 0 {
		at += 4 // the mask
	}
	return length <= uint64(n-at) && n >= at
}
