package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/process"
)

// stderrRecordSize is the most of one stderr line put in one log record; a
// longer line is logged in pieces, so that none is lost.
const stderrRecordSize = 64 << 10

// The child's output reaches the client through writers that Feed (package
// process) calls in pumpOutput's goroutine as the pipes are read: a
// lineSink for text, a chunkSink for binary mode, a stderrLog for stderr.
// Frames collect in the session's batch while more output is ready, and the
// wire writes them at each Flush, or when the batch is full.

// outputWriters returns the writers of the child's stdout and stderr.
func (s *session) outputWriters() (stdout, stderr io.Writer) {
	switch cfg := s.gw.cfg; {
	case cfg.Binary:
		return chunkSink{s: s}, &stderrLog{s: s}
	case cfg.PassStderr:
		return &lineSink{s: s, stream: "stdout"}, &lineSink{s: s, stream: "stderr"}
	}
	return &lineSink{s: s}, &stderrLog{s: s}
}

// closeCodeFor maps how the child ended to a close code.
func closeCodeFor(status process.Status) int {
	if status.Success() {
		return websocket.CloseNormalClosure
	}
	return websocket.CloseInternalServerErr
}

// writeOut writes the batch to the client once it is full.
func (s *session) writeOut() error {
	if s.out.size() < batchLimit {
		return nil
	}
	return s.wire.write(&s.out)
}

// outputFailed ends the session's output after it could not be sent: a line
// over the limit closes with 1009 after what came before it; a client that
// is closing gets its close frame; one that is gone, nothing more. Feed calls
// these writers no more after an error, so what is asked of the wire is
// written here.
func (s *session) outputFailed(err error) error {
	if errors.Is(err, errLineTooLong) {
		_ = s.wire.write(&s.out)
		s.log.Error("output line over the limit; closing", "limit", s.gw.cfg.MaxLineSize)
		s.closeWith(websocket.CloseMessageTooBig, "output line too long")
	}
	s.out.reset()
	if werr := s.wire.writeControls(); werr != nil && !errors.Is(werr, errWireClosed) {
		s.log.Debug("client not writable", "err", werr)
		s.conn.Close() // the reader returns, and the session ends
	}
	return err
}

// lineSink turns output into text messages, one per line. A line longer than
// half a batch is streamed as one message in several frames rather than
// gathered, so memory stays bounded whatever the line's length. With a
// stream name (--passstderr), each line is sent as JSON instead.
type lineSink struct {
	s       *session
	stream  string // "stdout" or "stderr" under --passstderr, else ""
	pending []byte // a line begun but not ended; nil when none
	long    int    // bytes of a long line streamed so far; 0 when none
	scratch []byte
}

// Write sends every line that p completes and keeps the rest.
func (l *lineSink) Write(p []byte) (int, error) {
	if err := l.write(p); err != nil {
		return 0, l.s.outputFailed(err)
	}
	return len(p), nil
}

func (l *lineSink) write(p []byte) error {
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		line := p[:i]
		if len(l.pending) > 0 {
			line = append(l.pending, line...)
			l.pending = l.pending[:0]
		}
		if err := l.endLine(trimCR(line)); err != nil {
			return err
		}
		p = p[i+1:]
	}
	l.pending = append(l.pending, p...)
	if l.stream != "" && len(l.pending) > l.s.gw.cfg.MaxLineSize {
		return errLineTooLong // JSON lines are gathered whole
	}
	if len(l.pending) < batchLimit/2 || l.stream != "" {
		return nil
	}
	// A long line: send what is safe to send now, keep the rest.
	cut := safeCut(l.pending)
	if err := l.part(l.pending[:cut]); err != nil {
		return err
	}
	l.pending = l.pending[:copy(l.pending, l.pending[cut:])]
	return nil
}

// Flush sends the batch: the pipe holds nothing more for now.
func (l *lineSink) Flush() error {
	if len(l.pending) == 0 && cap(l.pending) > 0 {
		l.pending = nil // a quiet child keeps no buffer
	}
	if err := l.s.wire.write(&l.s.out); err != nil {
		return l.s.outputFailed(err)
	}
	return nil
}

// Close sends a last line that had no newline.
func (l *lineSink) Close() error {
	if len(l.pending) > 0 || l.long > 0 {
		if err := l.endLine(l.pending); err != nil {
			return l.s.outputFailed(err)
		}
	}
	return l.Flush()
}

// endLine sends the end of a line: the whole line, or the last part of a
// long one.
func (l *lineSink) endLine(line []byte) error {
	if l.long == 0 {
		if len(line) > l.s.gw.cfg.MaxLineSize {
			return errLineTooLong
		}
		l.s.frameText(l.stream, l.sanitize(line))
		return l.s.writeOut()
	}
	if l.long+len(line) > l.s.gw.cfg.MaxLineSize {
		return errLineTooLong
	}
	l.s.out.frame(opContinuation, true, l.sanitize(line), true)
	l.long = 0
	return l.s.writeOut()
}

// part sends a piece of a long line: the first frame of its message, or
// the next.
func (l *lineSink) part(piece []byte) error {
	if l.long+len(piece) > l.s.gw.cfg.MaxLineSize {
		return errLineTooLong
	}
	op := byte(opContinuation)
	if l.long == 0 {
		op = opText
	}
	l.long += len(piece)
	l.s.out.frame(op, false, l.sanitize(piece), false)
	return l.s.writeOut()
}

func (l *lineSink) sanitize(text []byte) []byte {
	var replaced bool
	text, l.scratch, replaced = validText(text, l.scratch)
	if replaced && !l.s.replacedUTF8.Swap(true) {
		l.s.log.Info("child printed invalid UTF-8; replaced with U+FFFD")
	}
	if cap(l.scratch) > batchLimit {
		l.scratch = nil
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

// chunkSink sends output as binary messages, each as it was read.
type chunkSink struct{ s *session }

func (c chunkSink) Write(p []byte) (int, error) {
	c.s.out.frame(opBinary, true, p, true)
	if err := c.s.writeOut(); err != nil {
		return 0, c.s.outputFailed(err)
	}
	return len(p), nil
}

// Flush sends the batch.
func (c chunkSink) Flush() error {
	if err := c.s.wire.write(&c.s.out); err != nil {
		return c.s.outputFailed(err)
	}
	return nil
}

// Close sends what is left.
func (c chunkSink) Close() error { return c.Flush() }

// stderrLog logs a child's stderr line by line, a line over stderrRecordSize
// in pieces. Feed writes to it as stderr is read.
type stderrLog struct {
	s       *session
	pending []byte // a line begun but not ended
}

// Write logs the complete lines of what pending and p hold.
func (l *stderrLog) Write(p []byte) (int, error) {
	l.pending = l.logLines(append(l.pending, p...), false)
	if len(l.pending) == 0 {
		l.pending = nil // a quiet child keeps no buffer
	}
	return len(p), nil
}

// Close logs a last line that had no newline.
func (l *stderrLog) Close() error {
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
			logStderrRecord(l.s.log, trimCR(rest[:i]), false)
			rest = rest[i+1:]
		case len(rest) > stderrRecordSize:
			logStderrRecord(l.s.log, rest[:stderrRecordSize], true)
			rest = rest[stderrRecordSize:]
		case final && len(rest) > 0:
			logStderrRecord(l.s.log, rest, false)
			return buf[:0]
		default:
			return buf[:copy(buf, rest)]
		}
	}
}

// logStderrRecord logs a line of the child's stderr at warn: worth a look,
// but a script's complaint pages no one.
func logStderrRecord(log *slog.Logger, line []byte, continued bool) {
	if continued {
		log.Log(context.Background(), logs.LevelWarn, "stderr", "stream", "stderr", "line", string(line), "continued", true)
		return
	}
	log.Log(context.Background(), logs.LevelWarn, "stderr", "stream", "stderr", "line", string(line))
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

// errLineTooLong reports a line of output over the outbound limit.
var errLineTooLong = errors.New("line too long")

// validText returns text as valid UTF-8, with each invalid byte replaced by
// U+FFFD, and whether anything was replaced. Valid text is returned as is;
// otherwise the result is built in scratch, which is returned for reuse.
func validText(text []byte, scratch []byte) ([]byte, []byte, bool) {
	if utf8.Valid(text) {
		return text, scratch, false
	}
	out := scratch[:0]
	for len(text) > 0 {
		r, size := utf8.DecodeRune(text)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, text[:size]...)
		}
		text = text[size:]
	}
	return out, out, true
}
