package gateway

import (
	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/frames"
)

// closeOrder says where a close frame of ours goes among the data not yet
// written.
type closeOrder int

const (
	// closeAhead jumps ahead of the data not yet written: a refusal, a
	// protocol error, shutdown, a bound reached.
	closeAhead closeOrder = iota
	// closeBehind waits as long as the client makes progress for the chunk
	// being written: a client that is behind, told so after what it got.
	closeBehind
	// closeAfterData follows every byte of data: the end of the output.
	closeAfterData
)

// close is the one way a session sends a close frame of its own: it
// records it as the connection's end, unless the client or we closed
// already, puts it on the wire where order says, and has the watchdog bound
// the close handshake. It reports whether this close was the first; when
// it was not, what was asked for before is written if it still waits.
func (s *session) close(code int, reason string, order closeOrder) bool {
	if !s.ends.Send(code, reason) {
		if order == closeAfterData {
			_ = s.wire.WriteControls() // the writer's: a close asked for before
		}
		return false
	}
	frame := frames.CloseFrame(code, reason)
	switch order {
	case closeAhead:
		s.wire.Control(frame)
	case closeBehind:
		s.wire.CloseBehind(frame)
	case closeAfterData:
		_ = s.wire.CloseAfterFrame(frame)
	}
	s.watch.Poke()
	return true
}

// closeWith sends a close frame ahead of any output not yet written.
func (s *session) closeWith(code int, reason string) { s.close(code, reason, closeAhead) }

// goingAway closes the session because the gateway is shutting down: a
// member's shared child is the gateway's to stop, a session's own child is
// stopped here.
func (s *session) goingAway() {
	s.closeWith(websocket.CloseGoingAway, "server shutting down")
	if s.member == nil {
		s.proc.Stop()
	}
}

// answerClose answers the client's close frame, recorded as the
// connection's end unless we closed first.
func (s *session) answerClose(code int, reason string) {
	s.heard()
	s.ends.Receive(code, reason)
	if code == websocket.CloseNoStatusReceived {
		code = websocket.CloseNormalClosure
	}
	s.wire.Control(frames.CloseFrame(code, ""))
}
