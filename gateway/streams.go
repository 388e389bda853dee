package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/gorilla/websocket"
)

// streamLine is one line of stdout or stderr on its way to the client in
// --passstderr mode, or the error that ended its stream.
type streamLine struct {
	Stream string `json:"stream"`
	Data   string `json:"data"`
	err    error
}

// sendStreams sends stdout and stderr lines as JSON messages, in the order
// they are read. Each stream has its own reader; the channel between them
// and this writer is unbuffered, so a client that reads nothing pauses both.
func (s *session) sendStreams() error {
	lines := make(chan streamLine)
	var readers sync.WaitGroup
	readers.Add(2)
	go s.readStream("stdout", s.proc.Stdout(), lines, &readers)
	go s.readStream("stderr", s.proc.Stderr(), lines, &readers)
	go func() {
		readers.Wait()
		close(lines)
	}()

	var sendErr error
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for line := range lines {
		if sendErr != nil {
			continue // keep draining, so the readers reach the end
		}
		if line.err != nil {
			sendErr = line.err
			continue
		}
		buf.Reset()
		_ = enc.Encode(line)
		sendErr = s.writeMessage(websocket.TextMessage, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	return sendErr
}

// readStream reads one stream's lines into out until it ends; stderr lines
// are logged too.
func (s *session) readStream(stream string, r io.Reader, out chan<- streamLine, done *sync.WaitGroup) {
	defer done.Done()
	lines := newLineReader(r, 4<<10, s.gw.cfg.MaxLineSize)
	var scratch []byte
	for {
		line, err := lines.next()
		if err == io.EOF {
			return
		}
		if err != nil {
			out <- streamLine{err: err}
			_, _ = io.Copy(io.Discard, r)
			return
		}
		var replaced bool
		line, scratch, replaced = validText(line, scratch)
		if replaced && !s.replacedUTF8.Swap(true) {
			s.log.Info("child printed invalid UTF-8; replaced with U+FFFD")
		}
		if stream == "stderr" {
			logStderrRecord(s.log, line, false)
		}
		out <- streamLine{Stream: stream, Data: string(line)}
	}
}
