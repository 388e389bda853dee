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
// under --passstderr as JSON naming its stream. A stderr line is logged too.
func (s *session) frameText(stream string, text []byte) {
	if stream == "" {
		s.out.frame(opText, true, text, true)
		return
	}
	if stream == "stderr" {
		logStderrRecord(s.log, text, false)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(streamLine{Stream: stream, Data: string(text)})
	s.out.frame(opText, true, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true)
}
