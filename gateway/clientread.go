package gateway

import (
	"errors"
	"io"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/childin"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/wsconn"
)

// Every client is read the same way, whatever the mode: its reader reads
// the connection into a pooled buffer, a frames.Decoder (which holds
// nothing between messages) decodes it, and the whole messages go to the
// child's stdin in a bounded batch (childin.Batch), after each read's worth.
// gorilla only performs the handshake. Who reads differs: in
// per-connection mode, and for a broadcast member under TLS, the session's
// own goroutine (copyInput); for a member over a plain socket, a goroutine
// started for each read by the gateway's readiness set (memberread.go).

// clientInput takes what a client sends, as its decoder's handler: data
// messages go to the batch for the stdin, pings are answered, and the close
// frame is recorded and answered. Only the client's reader uses it.
type clientInput struct {
	s       *session
	batch   childin.Batch
	decoder *frames.Decoder
	closed  *websocket.CloseError // the client's close frame, once read
}

func newClientInput(s *session) clientInput {
	return clientInput{
		s:       s,
		batch:   childin.Batch{Write: s.writeStdin, Lines: !s.gw.cfg.Binary, Small: s.member != nil},
		decoder: frames.NewDecoder(frames.Config{MaxMessage: s.gw.cfg.MaxMessageSize, Deflate: s.deflate}),
	}
}

// copyInput is the only reader of the connection, on the session's
// goroutine: it writes each client message to the stdin until the client
// closes, drops or is dropped, and then returns why. Messages read together
// are written together, in one system call.
func (s *session) copyInput() error {
	in := newClientInput(s)
	read := s.blockingReader()
	for {
		if err := in.deliver(read(in.decode)); err != nil {
			return in.end(err)
		}
	}
}

// end delivers what the client sent before its side ended with err, and
// returns err as the session is to record it: the end of the stream is a
// close with no close frame (1006), as gorilla reports it.
func (in *clientInput) end(err error) error {
	in.s.deliverRest(&in.batch, err)
	in.batch.Release()
	if err == io.EOF {
		err = &websocket.CloseError{Code: wsconn.CloseAbnormal, Text: io.ErrUnexpectedEOF.Error()}
	}
	return err
}

// decode decodes p, the bytes just read, into the batch for the stdin.
func (in *clientInput) decode(p []byte) error { return in.decoder.Feed(p, in) }

// deliver writes the batch to the stdin after a read that ended with err.
// It returns the client's close frame as a *websocket.CloseError, and
// answers a protocol error with its close frame, after the whole messages
// before it.
func (in *clientInput) deliver(err error) error {
	var pe *frames.ProtocolError
	switch {
	case errors.As(err, &pe):
		if err := in.batch.Flush(); err != nil {
			return err
		}
		in.s.protocolError(pe.Code, pe.Reason)
		return err
	case err != nil:
		return err
	case in.closed != nil:
		return in.closed // end delivers the batch
	}
	return in.batch.Flush()
}

// Message adds a data message to the batch for the stdin, or refuses it.
func (in *clientInput) Message(text bool, payload []byte) error {
	s := in.s
	s.heard()
	if s.ends.ClosingByUs() {
		return nil // the session is closing: input is no longer wanted
	}
	taken, err := in.batch.Add(payload, text)
	if taken {
		s.countIn(len(payload))
	}
	if errors.Is(err, childin.ErrInvalidText) {
		if err := in.batch.Flush(); err != nil { // the messages before it were whole
			return err
		}
		s.log.Info("client message refused", "remote", s.remote, "reason", reasonInvalidText)
		s.closeWith(websocket.CloseInvalidFramePayloadData, reasonInvalidText)
		return nil
	}
	return err
}

// Ping answers the client's ping.
func (in *clientInput) Ping(payload []byte) {
	in.s.heard()
	in.s.wire.AnswerPing(payload) // frames.ControlFrame copies it
}

// Pong notes the client is there.
func (in *clientInput) Pong([]byte) { in.s.heard() }

// Close records the client's close frame and answers it.
func (in *clientInput) Close(code int, reason string) {
	in.s.answerClose(code, reason)
	in.closed = &websocket.CloseError{Code: code, Text: reason}
}

// protocolError answers a client that broke the protocol with a close
// frame.
func (s *session) protocolError(code int, reason string) {
	if s.close(code, reason, closeAhead) {
		s.log.Info("client broke the protocol; closing", "remote", s.remote, "code", code, "reason", reason)
	}
}

// blockingReader returns how the session's goroutine reads its client: a
// read passes what it got to use, waiting until there is something; use
// may change what it is given but not keep it. A plain socket is read as
// a member's is, into a pooled buffer taken only once there is something
// to read, so that an idle session holds none (in per-connection mode a
// big one); a TLS connection through its own reader, into a small buffer
// of the session's.
func (s *session) blockingReader() func(use func(p []byte) error) error {
	if s.client == s.raw {
		if sr := wsconn.NewSocketReader(s.raw); sr != nil {
			if s.member == nil {
				sr.Pooled = wsconn.GetBuffer // one reader per child: it reads in big turns
			}
			return sr.ReadWhenReady
		}
	}
	buf := make([]byte, wsconn.ReadBufferSize)
	return func(use func(p []byte) error) error {
		n, err := s.client.Read(buf)
		if n > 0 {
			if uerr := use(buf[:n]); uerr != nil {
				return uerr
			}
		}
		return err
	}
}
