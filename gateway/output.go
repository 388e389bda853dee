package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/process"
)

// Sizes of the child's output as the gateway reads it.
const (
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
	if flushErr := s.batch.flush(); err == nil {
		err = flushErr
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

// readOutput calls handle with each read of out, after what handle left
// unconsumed from the previous read. Frames written meanwhile are batched,
// and flushed whenever out has nothing more ready, so that a lone line goes
// out at once. The buffer is pooled: an idle session holds none. It returns
// handle's error, or nil at the end of output.
func (s *session) readOutput(out *process.Output, handle func(data []byte, final bool) (rest []byte, err error)) error {
	var buf *[]byte
	defer func() {
		if buf != nil {
			putBuffer(buf)
		}
	}()
	keep := 0
	for {
		if !out.Ready() {
			if err := s.batch.flush(); err != nil {
				return err
			}
			if keep == 0 && buf != nil {
				putBuffer(buf)
				buf = nil
			}
			out.WaitReady()
		}
		if buf == nil {
			buf = getBuffer()
		}
		b := (*buf)[:cap(*buf)]
		n, readErr := out.Read(b[keep:])
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.gw.cfg.WriteTimeout))
		s.batch.hold()
		rest, err := handle(b[:keep+n], readErr != nil)
		if err != nil || readErr != nil {
			return err
		}
		keep = copy(b, rest)
	}
}

// sendLines sends each line of output as a text message. A line longer than
// the read buffer is streamed as one message in several frames rather than
// gathered, so memory stays bounded whatever the line's length.
func (s *session) sendLines() error {
	lw := lineWriter{s: s, max: s.gw.cfg.MaxLineSize}
	return s.readOutput(s.proc.Stdout(), lw.write)
}

// lineWriter turns output into text messages, one per line.
type lineWriter struct {
	s       *session
	max     int
	long    io.WriteCloser // the message of a line longer than a buffer
	longLen int            // bytes of that line so far
	scratch []byte
}

// write sends every complete line in data and returns the partial line at
// its end, for the next read to complete. When final, everything is sent.
func (w *lineWriter) write(data []byte, final bool) ([]byte, error) {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if err := w.endLine(trimCR(data[:i])); err != nil {
			return nil, err
		}
		data = data[i+1:]
	}
	switch {
	case final:
		if len(data) > 0 || w.long != nil {
			return nil, w.endLine(data)
		}
		return nil, nil
	case len(data) < batchLimit/2 && w.long == nil:
		return data, nil
	}
	// A long line: send what is safe to send now, keep the rest.
	cut := safeCut(data)
	return data[cut:], w.part(data[:cut])
}

// endLine sends the end of a line: the whole line, or the last part of a
// long one.
func (w *lineWriter) endLine(line []byte) error {
	if w.long == nil {
		if len(line) > w.max {
			return errLineTooLong
		}
		text := w.sanitize(line)
		return w.s.writeMessage(websocket.TextMessage, text)
	}
	if err := w.part(line); err != nil {
		return err
	}
	err := w.long.Close()
	w.long = nil
	w.s.msgsOut.Add(1)
	return err
}

// part sends a piece of a long line, opening its message first.
func (w *lineWriter) part(piece []byte) error {
	if w.longLen+len(piece) > w.max {
		return errLineTooLong
	}
	if w.long == nil {
		msg, err := w.s.conn.NextWriter(websocket.TextMessage)
		if err != nil {
			return err
		}
		w.long, w.longLen = msg, 0
	}
	w.longLen += len(piece)
	text := w.sanitize(piece)
	w.s.bytesOut.Add(int64(len(text)))
	_, err := w.long.Write(text)
	return err
}

func (w *lineWriter) sanitize(text []byte) []byte {
	var replaced bool
	text, w.scratch, replaced = validText(text, w.scratch)
	if replaced && !w.s.replacedUTF8.Swap(true) {
		w.s.log.Info("child printed invalid UTF-8; replaced with U+FFFD")
	}
	if cap(w.scratch) > batchLimit {
		w.scratch = nil
	}
	return text
}

// safeCut returns how much of a partial line can be sent now: all of it but
// a trailing '\r' (it may begin "\r\n") and a trailing incomplete character.
func safeCut(data []byte) int {
	cut := runeCut(data)
	if cut > 0 && data[cut-1] == '\r' {
		cut--
	}
	return cut
}

// sendChunks sends output as binary messages, each as it was read.
func (s *session) sendChunks() error {
	return s.readOutput(s.proc.Stdout(), func(data []byte, _ bool) ([]byte, error) {
		if len(data) == 0 {
			return nil, nil
		}
		return nil, s.writeMessage(websocket.BinaryMessage, data)
	})
}

func (s *session) writeMessage(msgType int, data []byte) error {
	if err := s.conn.WriteMessage(msgType, data); err != nil {
		return err
	}
	s.msgsOut.Add(1)
	s.bytesOut.Add(int64(len(data)))
	return nil
}

// stderrLog logs a child's stderr line by line, a line over stderrRecordSize
// in pieces. The process supervisor writes to it as stderr is read; the
// session hands it its logger, which names the pid, once the child started.
type stderrLog struct {
	ready   chan struct{} // closed once log is set
	log     *slog.Logger
	pending []byte // a line begun but not ended
}

func newStderrLog() *stderrLog {
	return &stderrLog{ready: make(chan struct{})}
}

// start sets the logger; writes wait for it, so that every line names the
// child's pid.
func (l *stderrLog) start(log *slog.Logger) {
	l.log = log
	close(l.ready)
}

// Write logs the complete lines of what pending and p hold.
func (l *stderrLog) Write(p []byte) (int, error) {
	<-l.ready
	l.pending = l.logLines(append(l.pending, p...), false)
	if len(l.pending) == 0 {
		l.pending = nil // a quiet child keeps no buffer
	}
	return len(p), nil
}

// Close logs a last line that had no newline.
func (l *stderrLog) Close() error {
	<-l.ready
	l.pending = l.logLines(l.pending, true)
	return nil
}

// logLines logs the complete lines in buf (all of it when final) and returns
// what is left, moved to the start of buf.
func (l *stderrLog) logLines(buf []byte, final bool) []byte {
	rest := buf
	for {
		i := bytes.IndexByte(rest, '\n')
		switch {
		case i >= 0:
			logStderrRecord(l.log, trimCR(rest[:i]), false)
			rest = rest[i+1:]
		case len(rest) > stderrRecordSize:
			logStderrRecord(l.log, rest[:stderrRecordSize], true)
			rest = rest[stderrRecordSize:]
		case final && len(rest) > 0:
			logStderrRecord(l.log, rest, false)
			return buf[:0]
		default:
			return buf[:copy(buf, rest)]
		}
	}
}

func logStderrRecord(log *slog.Logger, line []byte, continued bool) {
	if continued {
		log.Error("stderr", "line", string(line), "continued", true)
		return
	}
	log.Error("stderr", "line", string(line))
}

func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
