package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/readiness"
)

// A broadcast member over plain TCP or a Unix socket is read without
// gorilla, and without a goroutine while it waits: an idle viewer of a
// dashboard should cost next to nothing, and a goroutine waiting in a read
// holds at least its 2 KiB stack, gorilla's reader a buffer besides. Its
// socket waits in the gateway's readiness set (memberSockets) instead, and
// each time the client has sent something, a goroutine started for that
// (readTurn) reads what is there into a pooled buffer, decodes it with a
// frames.Decoder, which holds nothing between messages, writes the
// messages to the shared stdin, and arms the watch again or ends the
// session. A member under TLS is read through gorilla (copyInput) on a
// goroutine of its own: TLS keeps buffers of its own anyway.

// watchMember starts reading a member's client as it sends, through sr,
// and reports false when the gateway's readiness set cannot be had: then
// the member is to be read by gorilla. Once it reports true, the session
// is the readiness set's: it ends, logs and leaves the gateway from the
// goroutine of its last read (memberInput.end).
func (s *session) watchMember(sr *socketReader) bool {
	set, err := s.gw.memberSockets()
	if err != nil {
		s.log.Warn("broadcast member read by a goroutine of its own", "err", err)
		return false
	}
	in := &memberInput{
		s:       s,
		sr:      sr,
		batch:   stdinBatch{s: s, open: true, whole: true},
		decoder: frames.NewDecoder(frames.Config{MaxMessage: s.gw.cfg.MaxMessageSize, Deflate: s.deflate}),
	}
	// gorilla refuses a client that sends before the handshake response,
	// so its reader holds nothing yet: let go of it and its buffer.
	s.conn, s.clientReader = nil, nil
	in.watch = set.Watch(sr.rc, in.readable)
	s.reader.Store(in) // before Arm: a drop from now on fires the watch
	if err := in.watch.Arm(); err != nil {
		in.end(err)
	}
	return true
}

// readable is the watch's callback: the client has sent something, hung
// up or failed. It must not block the readiness set.
func (in *memberInput) readable() { go in.readTurn() }

// readTurn reads what the client has sent and writes its messages to the
// stdin, on a goroutine of its own, then waits for more with no goroutine,
// or ends the session.
func (in *memberInput) readTurn() {
	err := in.deliver(in.sr.read(in.decode))
	if err == nil {
		if err = in.watch.Arm(); err == nil {
			return
		}
	}
	in.end(err)
}

// end ends a member whose client's side is over: err says how. What the
// client sent before that still reaches the stdin, if it can.
func (in *memberInput) end(err error) {
	s := in.s
	in.watch.Remove()
	in.batch.deliverRest(err)
	in.batch.release()
	if err == io.EOF {
		err = &websocket.CloseError{Code: closeAbnormal, Text: io.ErrUnexpectedEOF.Error()}
	}
	s.clientEnded(err)
	s.endMember()
	s.gw.conns.release()
	s.gw.sessionEnded(s)
}

// memberInput takes what a member's client sends, as its decoder's handler.
type memberInput struct {
	s       *session
	sr      *socketReader
	watch   *readiness.Watch
	batch   stdinBatch
	decoder *frames.Decoder
	payload bytes.Reader
	closed  *websocket.CloseError // the client's close frame, once read
}

// decode decodes p, the bytes just read, into the batch for the stdin.
func (in *memberInput) decode(p []byte) error { return in.decoder.Feed(p, in) }

// deliver writes the batch to the stdin after a read that ended with err.
// It returns the client's close frame as a *websocket.CloseError, as
// gorilla does, and answers a protocol error with its close frame, after
// the whole messages before it.
func (in *memberInput) deliver(err error) error {
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
		in.batch.deliverRest(in.closed)
		return in.closed
	}
	return in.batch.flush()
}

// Message adds a data message to the batch for the stdin, or refuses it.
func (in *memberInput) Message(text bool, payload []byte) error {
	s := in.s
	s.heard()
	in.payload.Reset(payload)
	err := in.batch.add(&in.payload, text)
	if code, reason := refusal(err); code != 0 {
		if err := in.batch.flush(); err != nil {
			return err
		}
		s.log.Info("client message refused", "remote", s.remote, "reason", reason)
		s.closeWith(code, reason)
		return nil
	}
	return err
}

// Ping answers the client's ping.
func (in *memberInput) Ping(payload []byte) {
	in.s.heard()
	in.s.wire.answerPing(payload) // controlFrame copies it
}

// Pong notes the client is there.
func (in *memberInput) Pong([]byte) { in.s.heard() }

// Close records the client's close frame and answers it.
func (in *memberInput) Close(code int, reason string) {
	_ = in.s.onClose(code, reason)
	in.closed = &websocket.CloseError{Code: code, Text: reason}
}

// protocolError answers a client that broke the protocol with a close
// frame, as gorilla does for the sessions it reads (gorillaClose).
func (s *session) protocolError(code int, reason string) {
	s.gorillaClosed.Store(true)
	if s.ends.send(code, reason) {
		s.log.Info("client broke the protocol; closing", "remote", s.remote, "code", code, "reason", reason)
		s.wire.control(closeFrame(code, reason))
	}
}

// socketReader reads a socket's data as far as it is there, without
// waiting, so that a reader holds a buffer only while it reads.
type socketReader struct {
	rc syscall.RawConn
}

// newSocketReader returns a reader of conn's socket, or nil when conn has
// none (TLS, say).
func newSocketReader(conn net.Conn) *socketReader {
	rc := rawConnOf(conn)
	if rc == nil {
		return nil
	}
	return &socketReader{rc: rc}
}

// maxReadTurn is the most a member's read takes from its socket before
// what it decoded goes to the stdin: the watch brings the reader straight
// back for the rest.
const maxReadTurn = batchLimit

// read reads what the socket holds, up to maxReadTurn bytes, and passes it
// to use, a pooled buffer of clientReadBufferSize bytes at a time; use may
// change what it is given but not keep it. The buffer is small because
// every member may be reading at once: a thousand subscribers answering
// the same line start a thousand reads, and with 64 KiB each they once
// took 17 MB of heap together (gctrace), most of the idle gateway's RSS.
// It returns use's error, io.EOF at the end of the stream, or the read's;
// nil when the socket has nothing more for now, or the turn is used up.
func (r *socketReader) read(use func(p []byte) error) error {
	buf := getReadBuffer()
	defer putBuffer(buf)
	p := (*buf)[:cap(*buf)]
	for taken := 0; taken < maxReadTurn; {
		var (
			n    int
			rerr error
		)
		err := r.rc.Read(func(fd uintptr) bool {
			for {
				n, rerr = syscall.Read(int(fd), p)
				if rerr != syscall.EINTR {
					return true // never wait: the readiness set does
				}
			}
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
		if err := use(p[:n]); err != nil {
			return err
		}
		if n < len(p) {
			return nil // all there was: a read more would only say EAGAIN
		}
		taken += n
	}
	return nil
}
