package gateway

import (
	"bytes"
	"encoding/json"

	"github.com/gorilla/websocket"
)

// streamLine is one line of stdout or stderr under --passstderr, sent as
// JSON.
type streamLine struct {
	Stream string `json:"stream"`
	Data   string `json:"data"`
}

// writeText sends one line: as it is, or under --passstderr as JSON naming
// its stream. A stderr line is logged too.
func (s *session) writeText(stream string, text []byte) error {
	if stream == "" {
		return s.writeMessage(websocket.TextMessage, text)
	}
	if stream == "stderr" {
		logStderrRecord(s.log, text, false)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(streamLine{Stream: stream, Data: string(text)})
	return s.writeMessage(websocket.TextMessage, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
