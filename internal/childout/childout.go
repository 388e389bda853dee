// Package childout turns what a child process prints into WebSocket frames:
// one text message per stdout line (invalid UTF-8 replaced, a line over the
// limit refused, a long line streamed as fragments of one message where the
// receiver allows), raw binary chunks in binary mode, and stderr as log
// lines, or as JSON messages beside stdout under --passstderr. The frames go
// to an Out: one client's session, or a broadcast stream.
package childout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/internal/wsconn"
)

// stderrRecordSize is the most of one stderr line put in one log record; a
// longer line is logged in pieces, so that none is lost.
const stderrRecordSize = 64 << 10

// The child's output reaches clients through writers that Feed (package
// process) calls as the pipes are read: a lineSink for text, a chunkSink for
// binary mode, a stderrLog for stderr. They turn output into frames and hand
// them to a Out: a session's (one client: frames collect in a batch
// while more output is ready and the wire writes them at each flush), or a
// broadcast stream's (each message encoded once and published).

// Out is where a sink's frames go.
type Out interface {
	// Frame adds one Frame; ends says it is the last of its message.
	Frame(op byte, fin bool, payload []byte, ends bool) error
	// Flush says the pipe holds nothing more for now.
	Flush() error
	// Failed handles an error of frame or flush, and returns it: Feed
	// calls the sink no more after an error.
	Failed(err error) error
	// Streams reports whether a long line may go out in pieces, as
	// fragments of one message, rather than gathered whole.
	Streams() bool
}

// Config is what the sinks of one child share.
type Config struct {
	// Out is where the frames go.
	Out Out
	// MaxLine is the longest line sent; a longer one fails with
	// ErrLineTooLong.
	MaxLine int
	// Log gets stderr's lines, and the notice of replaced UTF-8.
	Log *slog.Logger
	// Replaced is set once invalid UTF-8 was replaced: logged once.
	Replaced *atomic.Bool
	// Binary sends raw chunks instead of lines.
	Binary bool
	// PassStderr sends stderr too, every message then being JSON.
	PassStderr bool
	// StderrLine, when set, is called for each whole line of stderr (a
	// line logged in pieces counts once).
	StderrLine func()
}

// Writers returns the writers of a child's stdout and stderr.
func Writers(c Config) (stdout, stderr io.Writer) {
	sc := sinkConfig{out: c.Out, maxLine: c.MaxLine, log: c.Log, replaced: c.Replaced, stderrLine: c.StderrLine}
	if sc.stderrLine == nil {
		sc.stderrLine = func() {}
	}
	switch {
	case c.Binary:
		return chunkSink{sc.out}, &stderrLog{log: sc.log, line: sc.stderrLine}
	case c.PassStderr:
		return &lineSink{sinkConfig: sc, stream: "stdout"}, &lineSink{sinkConfig: sc, stream: "stderr"}
	}
	return &lineSink{sinkConfig: sc}, &stderrLog{log: sc.log, line: sc.stderrLine}
}

// sinkConfig is what the sinks of one child share.
type sinkConfig struct {
	out      Out
	maxLine  int
	log      *slog.Logger
	replaced *atomic.Bool // invalid UTF-8 was replaced: logged once

	stderrLine func() // told of each line of stderr
}

// lineSink turns output into text messages, one per line. Where its
// Out streams, a line longer than half a batch goes out as one message
// in several frames rather than gathered, so memory stays bounded whatever
// the line's length (under permessage-deflate each frame's part is
// compressed on its own). With a stream name (--passstderr), each line is
// sent as JSON instead, gathered whole.
type lineSink struct {
	sinkConfig
	stream  string // "stdout" or "stderr" under --passstderr, else ""
	pending []byte // a line begun but not ended; nil when none
	long    int    // bytes of a long line streamed so far; 0 when none
	scratch []byte
}

// Write sends every line that p completes and keeps the rest.
func (l *lineSink) Write(p []byte) (int, error) {
	if err := l.write(p); err != nil {
		return 0, l.out.Failed(err)
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
	whole := l.stream != "" || !l.out.Streams()
	if whole && len(l.pending) > l.maxLine {
		return ErrLineTooLong // gathered lines are bounded here
	}
	if len(l.pending) < wsconn.BatchLimit/2 || whole {
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
	if err := l.out.Flush(); err != nil {
		return l.out.Failed(err)
	}
	return nil
}

// Close sends a last line that had no newline.
func (l *lineSink) Close() error {
	if len(l.pending) > 0 || l.long > 0 {
		if err := l.endLine(l.pending); err != nil {
			return l.out.Failed(err)
		}
	}
	return l.Flush()
}

// endLine sends the end of a line: the whole line, or the last part of a
// long one.
func (l *lineSink) endLine(line []byte) error {
	if l.long+len(line) > l.maxLine {
		return ErrLineTooLong
	}
	if l.long == 0 {
		return l.text(l.sanitize(line))
	}
	l.long = 0
	return l.out.Frame(frames.OpContinuation, true, l.sanitize(line), true)
}

// part sends a piece of a long line: the first frame of its message, or
// the next.
func (l *lineSink) part(piece []byte) error {
	if l.long+len(piece) > l.maxLine {
		return ErrLineTooLong
	}
	op := byte(frames.OpContinuation)
	if l.long == 0 {
		op = frames.OpText
	}
	l.long += len(piece)
	return l.out.Frame(op, false, l.sanitize(piece), false)
}

// text sends one whole line as a text message: as it is, or under
// --passstderr as JSON naming its stream. A stderr line is logged too.
func (l *lineSink) text(line []byte) error {
	if l.stream == "" {
		return l.out.Frame(frames.OpText, true, line, true)
	}
	if l.stream == "stderr" {
		logStderrRecord(l.log, line, false)
		l.stderrLine()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(streamLine{Stream: l.stream, Data: string(line)})
	return l.out.Frame(frames.OpText, true, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true)
}

// streamLine is one line of stdout or stderr under --passstderr, sent as
// JSON.
type streamLine struct {
	Stream string `json:"stream"`
	Data   string `json:"data"`
}

func (l *lineSink) sanitize(text []byte) []byte {
	var replaced bool
	text, l.scratch, replaced = validText(text, l.scratch)
	if replaced && !l.replaced.Swap(true) {
		l.log.Info("child printed invalid UTF-8; replaced with U+FFFD")
	}
	if cap(l.scratch) > wsconn.BatchLimit {
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

// chunkSink sends output as binary messages, each as it was read.
type chunkSink struct{ out Out }

func (c chunkSink) Write(p []byte) (int, error) {
	if err := c.out.Frame(frames.OpBinary, true, p, true); err != nil {
		return 0, c.out.Failed(err)
	}
	return len(p), nil
}

// Flush sends the batch.
func (c chunkSink) Flush() error {
	if err := c.out.Flush(); err != nil {
		return c.out.Failed(err)
	}
	return nil
}

// Close sends what is left.
func (c chunkSink) Close() error { return c.Flush() }

// stderrLog logs a child's stderr line by line, a line over stderrRecordSize
// in pieces. Feed writes to it as stderr is read.
type stderrLog struct {
	log     *slog.Logger
	line    func() // told of each whole line
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
			logStderrRecord(l.log, trimCR(rest[:i]), false)
			l.line()
			rest = rest[i+1:]
		case len(rest) > stderrRecordSize:
			logStderrRecord(l.log, rest[:stderrRecordSize], true)
			rest = rest[stderrRecordSize:]
		case final && len(rest) > 0:
			logStderrRecord(l.log, rest, false)
			l.line()
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

// ErrLineTooLong reports a line of output over the outbound limit.
var ErrLineTooLong = errors.New("line too long")

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
