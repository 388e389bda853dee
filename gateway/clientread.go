package gateway

import (
	"errors"
	"github.com/wsgate/wsgate/internal/wsconn"
	"io"
	"net"
	"syscall"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/frames"
)

// Every client is read the same way, whatever the mode: its reader reads
// the connection into a pooled buffer, a frames.Decoder (which holds
// nothing between messages) decodes it, and the whole messages go to the
// child's stdin in a bounded batch (stdinBatch), after each read's worth.
// gorilla only performs the handshake. Who reads differs: in
// per-connection mode, and for a broadcast member under TLS, the session's
// own goroutine (copyInput); for a member over a plain socket, a goroutine
// started for each read by the gateway's readiness set (memberread.go).

// clientInput takes what a client sends, as its decoder's handler: data
// messages go to the batch for the stdin, pings are answered, and the close
// frame is recorded and answered. Only the client's reader uses it.
type clientInput struct {
	s       *session
	batch   stdinBatch
	decoder *frames.Decoder
	closed  *websocket.CloseError // the client's close frame, once read
}

func newClientInput(s *session) clientInput {
	return clientInput{
		s:       s,
		batch:   stdinBatch{s: s, open: true, small: s.member != nil},
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
	in.batch.deliverRest(err)
	in.batch.release()
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
		if err := in.batch.flush(); err != nil {
			return err
		}
		in.s.protocolError(pe.Code, pe.Reason)
		return err
	case err != nil:
		return err
	case in.closed != nil:
		return in.closed // end delivers the batch
	}
	return in.batch.flush()
}

// Message adds a data message to the batch for the stdin, or refuses it.
func (in *clientInput) Message(text bool, payload []byte) error {
	s := in.s
	s.heard()
	err := in.batch.add(payload, text)
	if errors.Is(err, errInvalidText) {
		if err := in.batch.flush(); err != nil { // the messages before it were whole
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
	in.s.onClose(code, reason)
	in.closed = &websocket.CloseError{Code: code, Text: reason}
}

// protocolError answers a client that broke the protocol with a close
// frame.
func (s *session) protocolError(code int, reason string) {
	if s.ends.Send(code, reason) {
		s.log.Info("client broke the protocol; closing", "remote", s.remote, "code", code, "reason", reason)
		s.wire.Control(frames.CloseFrame(code, reason))
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
		if sr := newSocketReader(s.raw); sr != nil {
			if s.member == nil {
				sr.pooled = getBuffer // one reader per child: it reads in big turns
			}
			return sr.readWhenReady
		}
	}
	buf := make([]byte, clientReadBufferSize)
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

// socketReader reads a socket's data as far as it is there, so that a
// reader holds a buffer only while it reads.
type socketReader struct {
	rc syscall.RawConn
	// pooled returns the buffer a read turn reads into;
	// getReadBuffer unless set.
	pooled func() *[]byte
}

// newSocketReader returns a reader of conn's socket, or nil when conn has
// none (TLS, say).
func newSocketReader(conn net.Conn) *socketReader {
	rc := wsconn.RawConnOf(conn)
	if rc == nil {
		return nil
	}
	return &socketReader{rc: rc, pooled: getReadBuffer}
}

// maxReadTurn is the most a read takes from its socket before what it
// decoded goes to the stdin: the reader comes straight back for the rest.
const maxReadTurn = wsconn.BatchLimit

// read reads what the socket holds, up to maxReadTurn bytes, and passes it
// to use, a pooled buffer at a time; use may change what it is given but
// not keep it. A member's buffer is small (clientReadBufferSize) because
// every member may be reading at once: a thousand subscribers answering
// the same line start a thousand reads, and with 64 KiB each they once
// took 17 MB of heap together (gctrace), most of the idle gateway's RSS.
// It returns use's error, io.EOF at the end of the stream, or the read's;
// nil when the socket has nothing more for now, or the turn is used up.
// It never waits: the readiness set does, for a member.
func (r *socketReader) read(use func(p []byte) error) error { return r.turn(use, false) }

// readWhenReady is read for a reader that has nothing else to do: while
// the socket has nothing to read, it waits in the runtime's poller, holding
// no buffer, until it has (data, its end or an error) or its read deadline
// passes.
func (r *socketReader) readWhenReady(use func(p []byte) error) error { return r.turn(use, true) }

// turn is read, waiting first if wait is set.
func (r *socketReader) turn(use func(p []byte) error, wait bool) error {
	var buf *[]byte
	defer func() {
		if buf != nil {
			putBuffer(buf)
		}
	}()
	for taken := 0; taken < maxReadTurn; {
		var (
			n    int
			rerr error
		)
		err := r.rc.Read(func(fd uintptr) bool {
			if buf == nil {
				buf = r.pooled()
			}
			for {
				n, rerr = syscall.Read(int(fd), (*buf)[:cap(*buf)])
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN && wait && taken == 0 {
				putBuffer(buf) // none is held while the poller waits
				buf = nil
				return false
			}
			return true
		})
		switch {
		case err != nil:
			return err
		case rerr == syscall.EAGAIN:
			return nil
		case rerr != nil:
			return rerr
		case n == 0:
			if taken > 0 {
				return nil // the end is told by the next read, after what came before it is delivered
			}
			return io.EOF
		}
		if err := use((*buf)[:n]); err != nil {
			return err
		}
		if n < cap(*buf) {
			return nil // all there was: a read more would only say EAGAIN
		}
		taken += n
	}
	return nil
}
