package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// What a stream's bus tells it (the stream is its link's
// broadcast.Handler), and what its members send to its process: straight to
// the process's stdin while this instance leads, else through the bus. The
// stream's end on the bus (the process exited) ends the local stream with
// the process's close code, on every instance; a broken link ends it on
// this instance with 1012 "service restart".

var _ broadcast.Handler = (*stream)(nil)

// Lead starts the process: this instance leads the stream now, taken over
// from another. A process that cannot start ends the stream everywhere, as
// it would refuse the client that started it.
func (st *stream) Lead() {
	g := st.g
	if !g.track() { // shutting down
		return
	}
	defer g.sessions.Done()
	g.shared.mu.Lock()
	if st.gone || st.leader.Load() != nil {
		g.shared.mu.Unlock()
		return
	}
	src, err := st.leadLocked()
	g.shared.mu.Unlock()
	if err != nil {
		code := websocket.CloseInternalServerErr
		if errors.Is(err, errTooManyForks) {
			code = websocket.CloseTryAgainLater
		}
		st.end(frames.CloseFrame(code, err.Error()), true)
		return
	}
	st.log.Debug("leading the stream", "pid", src.proc.Pid())
}

// Deliver passes on a message of the leader's: the last one ends the local
// stream.
func (st *stream) Deliver(m *broadcast.Message) {
	if m.Last {
		st.end(m.Data, false)
		return
	}
	st.fanout.Publish(st.fromBus(m))
}

// fromBus readies a message from the bus for the local members: the bus
// carries the frame only, so under --compress each instance compresses it
// once for its own members.
func (st *stream) fromBus(m *broadcast.Message) *broadcast.Message {
	if st.g.cfg.Compress && len(m.Data) > 0 && m.Size <= len(m.Data) {
		st.g.compressShared(m, m.Data[0]&0x0f, m.Data[0]&frames.FinBit != 0, m.Data[len(m.Data)-m.Size:])
	}
	return m
}

// Input writes what a client on another instance sent to the process's
// stdin, whole, after any other client's write under way; it gives up when
// the stream ends.
func (st *stream) Input(p []byte) {
	if src := st.leader.Load(); src != nil {
		if err := src.stdin.WriteUntil(p, st.done); err != nil {
			st.log.Debug("input from another instance not written", "err", err)
		}
	}
}

// Audience stops the process, after the linger time, when no instance has
// members.
func (st *stream) Audience(instances int) {
	g := st.g
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	st.audience = instances
	src := st.leader.Load()
	switch {
	case st.gone || src == nil:
	case instances > 0 || st.members > 0:
		st.stopLingerLocked()
	case g.cfg.Linger <= 0:
		st.stopLocked(src)
	case st.linger == nil:
		st.linger = time.AfterFunc(g.cfg.Linger, func() {
			g.shared.mu.Lock()
			defer g.shared.mu.Unlock()
			if st.linger != nil && st.audience == 0 && st.members == 0 && !st.gone {
				st.linger = nil
				st.stopLocked(src)
			}
		})
	}
}

// Fail ends the stream here with 1012: the link is broken, and lines may
// have been missed. The process, if this instance runs it, is stopped; the
// other instances' members stay, and another instance takes the lead.
func (st *stream) Fail(error) {
	st.end(frames.CloseFrame(websocket.CloseServiceRestart, "service restart"), false)
	if src := st.leader.Load(); src != nil {
		src.proc.Stop()
	}
}

// input passes what a member sent to the process: to its stdin while this
// instance leads, else through the bus. While the leader's queue is full,
// it waits, as a write to a stdin that is not read does, waking every
// stdinCheckInterval to see whether the client has hung up or the session
// is closing.
func (st *stream) input(s *session, p []byte) error {
	for {
		if src := st.leader.Load(); src != nil {
			return s.writeStdinTo(src.stdin, p)
		}
		select {
		case <-st.done:
			return process.ErrStdinClosed
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), stdinCheckInterval)
		err := st.link.Send(ctx, p)
		cancel()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, context.DeadlineExceeded):
			s.log.Info("client input lost: the bus failed", "err", err, "bytes", len(p))
			return nil
		case s.ends.ClosingByUs() || wsconn.PeerHungUp(s.raw):
			return errClientGone
		}
	}
}

// lastInput passes the messages a member's client sent as it left, within
// wait.
func (st *stream) lastInput(p []byte, wait time.Duration) error {
	if src := st.leader.Load(); src != nil {
		return src.stdin.WriteLast(p, wait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return st.link.Send(ctx, p)
}
