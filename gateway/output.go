package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/process"
)

// Buffer sizes of the child's pipes as the gateway reads them.
const (
	outputBufferSize = 32 << 10
	stderrBufferSize = 4 << 10
	// stderrRecordSize is the most of one stderr line put in one log record;
	// a longer line is logged in pieces, so that none is lost.
	stderrRecordSize = 64 << 10
)

// copyOutput is the only writer of data messages: it sends the child's output
// until it ends, then closes the session with the child's exit status. Once
// the client cannot be written to, it keeps reading and discarding, so that
// the child never blocks on a full pipe while it is being stopped.
func (s *session) copyOutput() {
	var err error
	switch {
	case s.gw.cfg.Binary:
		err = s.sendChunks()
	case s.gw.cfg.PassStderr:
		err = s.sendStreams()
	default:
		err = s.sendLines()
	}
	switch {
	case errors.Is(err, errLineTooLong):
		s.log.Error("output line over the limit; closing", "limit", s.gw.cfg.MaxLineSize)
		s.sendClose(websocket.CloseMessageTooBig, "output line too long")
	case err != nil:
		s.log.Debug("client not writable", "err", err)
		s.conn.Close() // the reader returns, and the session ends
	}
	_, _ = io.Copy(io.Discard, s.proc.Stdout())

	s.proc.Stop()
	status := s.proc.Status()
	s.sendClose(closeCodeFor(status), status.String())
}

// closeCodeFor maps how the child ended to a close code.
func closeCodeFor(status process.Status) int {
	if status.Success() {
		return websocket.CloseNormalClosure
	}
	return websocket.CloseInternalServerErr
}

// sendLines sends each line of output as a text message. It returns nil at the
// end of output, errLineTooLong, or the error that made the client
// unwritable.
func (s *session) sendLines() error {
	lines := newLineReader(s.proc.Stdout(), outputBufferSize, s.gw.cfg.MaxLineSize)
	var scratch []byte
	for {
		line, err := lines.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var replaced bool
		line, scratch, replaced = validText(line, scratch)
		if replaced && !s.replacedUTF8.Swap(true) {
			s.log.Info("child printed invalid UTF-8; replaced with U+FFFD")
		}
		if err := s.writeMessage(websocket.TextMessage, line); err != nil {
			return err
		}
		lines.release()
		if cap(scratch) > 64<<10 {
			scratch = nil
		}
	}
}

// sendChunks sends output as binary messages, each as it was read.
func (s *session) sendChunks() error {
	buf := make([]byte, outputBufferSize)
	stdout := s.proc.Stdout()
	for {
		n, err := stdout.Read(buf)
		if n > 0 {
			if werr := s.writeMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return nil
		}
	}
}

func (s *session) writeMessage(msgType int, data []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.gw.cfg.WriteTimeout))
	if err := s.conn.WriteMessage(msgType, data); err != nil {
		return err
	}
	s.msgsOut.Add(1)
	s.bytesOut.Add(int64(len(data)))
	return nil
}

// logStderr logs the child's stderr line by line until it ends. Reading never
// waits on the log's consumer longer than a write to stderr takes, so the
// child never stalls on a long line.
func (s *session) logStderr() {
	buf := make([]byte, 0, stderrBufferSize)
	stderr := s.proc.Stderr()
	chunk := make([]byte, stderrBufferSize)
	for {
		n, err := stderr.Read(chunk)
		buf = append(buf, chunk[:n]...)
		rest := s.logStderrLines(buf, err != nil)
		buf = append(buf[:0], rest...) // memmove: rest lies within buf
		if err != nil {
			return
		}
	}
}

// logStderrLines logs the complete lines in buf (all of it when final) and
// returns what is left, logging a line over stderrRecordSize in pieces.
func (s *session) logStderrLines(buf []byte, final bool) []byte {
	for {
		i := bytes.IndexByte(buf, '\n')
		switch {
		case i >= 0:
			s.logStderrRecord(trimEOL(buf[:i+1]), false)
			buf = buf[i+1:]
		case len(buf) > stderrRecordSize:
			s.logStderrRecord(buf[:stderrRecordSize], true)
			buf = buf[stderrRecordSize:]
		case final && len(buf) > 0:
			s.logStderrRecord(buf, false)
			return buf[:0]
		default:
			return buf
		}
	}
}

func (s *session) logStderrRecord(line []byte, continued bool) {
	if continued {
		s.log.Error("stderr", "line", string(line), "continued", true)
		return
	}
	s.log.Error("stderr", "line", string(line))
}

// readMessage appends the rest of a client message to buf.
func readMessage(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
