package gateway

import (
	"errors"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/childout"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// childOutput returns the writers of the stdout and stderr of a child of
// endpoint, whose frames go to out. What it logs (its stderr) names the
// endpoint's path, under --dir which script complained; its stderr lines
// are counted.
func (g *Gateway) childOutput(endpoint string, out childout.Out, log *slog.Logger, replaced *atomic.Bool) (stdout, stderr io.Writer) {
	return childout.Writers(childout.Config{
		Out:        out,
		MaxLine:    g.cfg.MaxLineSize,
		Log:        log.With("path", endpoint),
		Replaced:   replaced,
		Binary:     g.cfg.Binary,
		PassStderr: g.cfg.PassStderr,
		StderrLine: func() { g.observe.StderrLine(endpoint) },
	})
}

// closeCodeFor maps how the child ended to a close code.
func closeCodeFor(status process.Status) int {
	if status.Success() {
		return websocket.CloseNormalClosure
	}
	return websocket.CloseInternalServerErr
}

// sessionOut is a session's childout.Out: the frames go to its one client,
// compressed when it negotiated permessage-deflate.
type sessionOut struct{ s *session }

// Frame adds a frame to the session's batch, compressed when the client
// negotiated permessage-deflate, writing the batch first when it is full.
func (o sessionOut) Frame(op byte, fin bool, payload []byte, ends bool) error {
	if o.s.out.Full(frames.MaxHeader + len(payload) + frames.DeflateSlack) {
		if err := o.s.wire.Write(&o.s.out); err != nil {
			return err
		}
	}
	switch {
	case !o.s.deflate:
		o.s.out.Frame(op, fin, payload, ends)
	case op != frames.OpContinuation && fin: // a whole message
		o.s.out.Message(op, payload, true)
	default: // a frame of a line streamed in several
		o.s.out.DeflatedFrame(op, fin, payload, ends)
	}
	return nil
}

// Flush writes the batch: the pipe holds nothing more for now.
func (o sessionOut) Flush() error { return o.s.wire.Write(&o.s.out) }

// Streams reports true: one client takes a long line in pieces.
func (o sessionOut) Streams() bool { return true }

// Failed ends the session's output: a line over the limit closes with 1009
// after what came before it; a client that is closing gets its close frame;
// one that is gone, nothing more. Since Feed calls the sinks no more, what
// is asked of the wire is written here.
func (o sessionOut) Failed(err error) error {
	s := o.s
	if errors.Is(err, childout.ErrLineTooLong) {
		_ = s.wire.Write(&s.out)
		s.log.Error("output line over the limit; closing", "limit", s.gw.cfg.MaxLineSize)
		s.closeWith(websocket.CloseMessageTooBig, "output line too long")
	}
	s.out.Reset()
	if werr := s.wire.WriteControls(); werr != nil && !errors.Is(werr, wsconn.ErrClosing) {
		s.log.Debug("client not writable", "err", werr)
		reason := "write failed"
		if wsconn.IsTimeout(werr) {
			reason = wsconn.ReasonWriteTimeout
		}
		s.drop(reason) // the reader returns, and the session ends
	}
	return err
}
