package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/childout"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// source is the process of a stream this instance leads, and the frameOut
// of its output: each message is framed once, and published at each flush
// (a batch of at most wsconn.BatchLimit bytes), when the pipe holds nothing
// more for now: to the bus, which numbers the messages, then, once the bus
// has taken them, to the local members. So an instance that lost the lead
// (it was frozen, or cut off from the bus) delivers nothing more of its
// process, here or anywhere (fencing). Lines are gathered whole, so that
// every member and every replay starts at the start of a message.
type source struct {
	st             *stream
	proc           *process.Process
	stdin          *process.Stdin
	log            *slog.Logger
	start          time.Time
	stopOnShutdown func() bool
	replaced       atomic.Bool // invalid UTF-8 was replaced: logged once

	batch []*broadcast.Message // not yet published to the bus: pumpOutput's own
	size  int                  // the bytes of batch
}

// leadLocked starts the stream's process on this instance, and pumpOutput,
// its feeder; the registry's lock is held.
func (st *stream) leadLocked() (*source, error) {
	g := st.g
	if !g.forks.Acquire() {
		return nil, errTooManyForks
	}
	proc, err := process.Start(st.spec)
	if err != nil {
		g.forks.Release()
		g.observe.ChildStartFailed(st.endpoint)
		g.log.Error("command failed to start", "path", st.key, "err", err)
		return nil, fmt.Errorf("%w: %v", errNoStart, rootCause(err))
	}
	g.observe.ChildStarted(st.endpoint)
	src := &source{
		st:    st,
		proc:  proc,
		stdin: process.NewStdin(proc.Stdin(), stdinCheckInterval),
		log:   st.log.With("pid", proc.Pid()),
		start: time.Now(),
	}
	g.sessions.Add(1) // Shutdown waits for the shared process too
	g.setLive(proc, true)
	src.stopOnShutdown = context.AfterFunc(g.ctx, proc.Stop)
	src.log.Log(context.Background(), logs.LevelTrace, "shared process started", "remote", st.remote)
	st.leader.Store(src)
	go src.pumpOutput()
	return src, nil
}

// pumpOutput feeds the process's output to the stream until its group is
// gone, then ends the stream with its exit status: every member gets its
// close frame after the lines it has queued.
func (src *source) pumpOutput() {
	st, g := src.st, src.st.g
	defer g.sessions.Done()
	defer g.forks.Release()
	defer g.setLive(src.proc, false)
	defer src.stopOnShutdown()
	status := src.proc.Feed(g.childOutput(st.endpoint, src, src.log, &src.replaced))
	g.observe.ChildEnded(st.endpoint, status)
	exit := status.String()
	src.endAfterBatch(frames.CloseFrame(closeCodeFor(status), exit))
	st.leader.Store(nil)
	st.fanout.Wait() // its delivery workers have woken every member for the end
	published, joined, _ := st.fanout.Stats()
	src.log.Log(context.Background(), logs.LevelAccess, "shared process ended",
		"duration", time.Since(src.start).Round(time.Millisecond),
		"exit", exit,
		"clients", joined,
		"msgs_out", published)
}

// endAfterBatch ends the stream everywhere with frame, after what the
// batch holds. A gateway shutting down publishes the batch too, but only
// lets go of the lead, for another instance to take and continue.
func (src *source) endAfterBatch(frame []byte) {
	_ = src.Flush() // an error failed the link, which ended the stream
	src.st.end(frame, src.st.g.ctx.Err() == nil)
}

// Frame publishes a message to the local members at once, framed once for
// all, and batches it for the bus.
func (src *source) Frame(op byte, fin bool, payload []byte, ends bool) error {
	msg := src.st.g.sharedMessage(op, fin, payload)
	src.batch = append(src.batch, msg)
	src.size += len(msg.Data)
	if src.size >= wsconn.BatchLimit {
		return src.Flush()
	}
	return nil
}

// Flush publishes the batch to the bus, then, once the bus has taken it, to
// the local members.
func (src *source) Flush() error {
	if len(src.batch) == 0 {
		return nil
	}
	err := src.st.link.Publish(src.batch)
	if err == nil {
		src.st.fanout.PublishAll(src.batch)
	}
	clear(src.batch)
	src.batch, src.size = src.batch[:0], 0
	if cap(src.batch) > 64 {
		src.batch = nil // a quiet process keeps no big batch
	}
	return err
}

// Streams reports false: a stream's lines are gathered whole, so that every
// member and every replay starts at the start of a message.
func (src *source) Streams() bool { return false }

// Failed ends the stream everywhere with 1009 when a line is over the
// limit, and stops the process, as one client's would be. An error of the
// bus has Failed the link already, which stopped the process.
func (src *source) Failed(err error) error {
	if errors.Is(err, childout.ErrLineTooLong) {
		src.log.Error("output line over the limit; closing every client", "limit", src.st.g.cfg.MaxLineSize)
		src.endAfterBatch(frames.CloseFrame(websocket.CloseMessageTooBig, "output line too long"))
		src.proc.Stop()
	}
	return err
}

// sharedMessage is one message of a broadcast stream, framed once for
// every member, and under --compress compressed once for the members that
// negotiated permessage-deflate.
func (g *Gateway) sharedMessage(op byte, fin bool, payload []byte) *broadcast.Message {
	data := frames.AppendHeader(make([]byte, 0, frames.MaxHeader+len(payload)), op, fin, len(payload))
	msg := &broadcast.Message{Data: append(data, payload...), Size: len(payload)}
	g.compressShared(msg, op, fin, payload)
	return msg
}

// compressShared gives msg its compressed frame under --compress, when
// that is smaller.
func (g *Gateway) compressShared(msg *broadcast.Message, op byte, fin bool, payload []byte) {
	if g.cfg.Compress && op != frames.OpContinuation && fin {
		if f := frames.AppendMessage(nil, op, payload, true); f[0]&frames.RSV1Bit != 0 {
			msg.Compressed = f
		}
	}
}
