package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"unsafe"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/clientframes"
)

// A broadcast member over plain TCP or a Unix socket is read without
// gorilla: an idle viewer of a dashboard should cost next to nothing, and
// gorilla's reader holds a buffer for the connection's life while its
// goroutine waits in it. readMember waits for data holding no buffer, reads
// what is there into a pooled one, and decodes it with a
// clientframes.Decoder, which holds nothing between messages. A member
// under TLS is read through gorilla (copyInput): TLS keeps buffers of its
// own anyway.

// readMember is a member's reader, as copyInput is a session's. It waits
// for the client on the session's goroutine, with no buffer and in a few
// shallow frames: a goroutine starts with the smallest stack (2 KiB) and
// keeps it unless its calls go deeper, and the runtime gives back what a
// goroutine grew only while it uses less than a quarter of it, which a
// parked reader never does. What arrives is read on a goroutine started
// for it (readSome). It writes
// each client message to the shared stdin, whole, until the client closes,
// drops or is dropped, and returns why. The messages of one read go in one
// write.
func (s *session) readMember(sr *socketReader) error {
	in := memberInput{
		s:       s,
		batch:   stdinBatch{s: s, open: true, whole: true},
		decoder: clientframes.NewDecoder(clientframes.Config{MaxMessage: s.gw.cfg.MaxMessageSize, Deflate: s.deflate}),
	}
	defer in.batch.release()
	// gorilla refuses a client that sends before the handshake response,
	// so its reader holds nothing yet: let go of it and its buffer.
	s.conn, s.clientReader = nil, nil
	done := make(chan error, 1)
	for {
		err := sr.waitReadable()
		if err == nil {
			go in.readSome(sr, done)
			err = <-done
		}
		switch {
		case err == io.EOF:
			in.batch.deliverRest(err)
			return &websocket.CloseError{Code: closeAbnormal, Text: io.ErrUnexpectedEOF.Error()}
		case err != nil:
			in.batch.deliverRest(err)
			return err
		}
	}
}

// readSome reads what the client has sent and writes it to the stdin, on
// a goroutine of its own: the deep calls that takes (the decoder, the
// logger, the stdin's turn) grow that goroutine's stack, not the one that
// waits for the client. It tells done how it ended.
func (in *memberInput) readSome(sr *socketReader, done chan<- error) {
	err := sr.read(in.decode)
	// The read buffer is back in its pool: a member waiting for its turn at
	// the stdin holds only the messages it is to write.
	done <- in.deliver(err)
}

// memberInput takes what a member's client sends, as its decoder's handler.
type memberInput struct {
	s       *session
	batch   stdinBatch
	decoder *clientframes.Decoder
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
	var pe *clientframes.ProtocolError
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

// socketReader reads a socket only once data is there, so that a reader
// waiting for it holds no buffer.
type socketReader struct {
	rc   syscall.RawConn
	peek func(fd uintptr) bool // readable, bound once: waiting allocates nothing
}

// waitReadable waits until the socket has data to read, or its end, or an
// error, and reads nothing.
func (r *socketReader) waitReadable() error { return r.rc.Read(r.peek) }

// readable reports whether a read of fd would not wait.
func readable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			return errno != syscall.EAGAIN
		}
	}
}

// newSocketReader returns a reader of conn's socket, or nil when conn has
// none (TLS, say).
func newSocketReader(conn net.Conn) *socketReader {
	rc := rawConnOf(conn)
	if rc == nil {
		return nil
	}
	return &socketReader{rc: rc, peek: readable}
}

// read waits until the socket has data, reads what is there into a pooled
// buffer and passes it to use, which may change it but not keep it. It
// returns use's error, io.EOF at the end of the stream, or the read's.
func (r *socketReader) read(use func(p []byte) error) error {
	var (
		buf  *[]byte
		n    int
		rerr error
	)
	err := r.rc.Read(func(fd uintptr) bool {
		buf = getBuffer()
		for {
			n, rerr = syscall.Read(int(fd), (*buf)[:cap(*buf)])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			putBuffer(buf) // wait with nothing held
			buf = nil
			return false
		}
		return true
	})
	if buf == nil {
		return err
	}
	defer putBuffer(buf)
	switch {
	case err != nil:
		return err
	case rerr != nil:
		return rerr
	case n == 0:
		return io.EOF
	}
	return use((*buf)[:n])
}
