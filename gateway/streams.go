package gateway

import (
	"bytes"
	"encoding/json"
)

// streamLine is one line of stdout or stderr under --passstderr, sent as
// JSON.
type streamLine struct {
	Stream string `json:"stream"`
	Data   string `json:"data"`
}

// frameText adds one line to the batch as a text message: as it is, or
// under --passstderr as JSON naming its stream; compressed when the client
// asked for it. A stderr line is logged too.
func (s *session) frameText(stream string, text []byte) {
	if stream == "" {
		s.out.message(opText, text, s.deflate)
		return
	}
	if stream == "stderr" {
		logStderrRecord(s.log, text, false)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(streamLine{Stream: stream, Data: string(text)})
	s.out.message(opText, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), s.deflate)
}
