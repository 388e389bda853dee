package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/cgienv"
	"github.com/wsgate/wsgate/internal/fairness"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/httppolicy"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// session is one WebSocket connection and the child behind it.
//
// The goroutine that runs it owns it. It builds the session, starts the
// child, then starts pumpOutput, the only writer to the client: it feeds the
// child's output to the client and, once the child is gone, ends the
// conversation with the close frame. The owner itself is the only reader of
// the client, writing each message to the child's stdin (copyInput,
// clientread.go); gorilla only performed the handshake. When
// the client's side ends, it asks the child to stop, waits for pumpOutput to
// finish, and logs the session. Control frames (pings, pongs, close frames)
// are asked of the wire from any goroutine; the watchdog, on a timer, pings
// the client and drops it when it is gone. A broadcast member over a plain
// socket has no such goroutine: the gateway's readiness set holds it while
// it waits, and its reads end it (memberread.go).
type session struct {
	gw          *Gateway
	client      net.Conn // the connection, TLS included
	raw         net.Conn // the connection under any TLS
	req         *request // the handshake as admitted, until the child starts
	peer        httppolicy.Client
	remote, uri string // of the handshake, for the logs
	ep          httppolicy.Endpoint
	id          string
	held        *fairness.Held   // the limits' slots it holds; released when it ends
	life        *wsconn.Lifetime // its bounds in time, if it has any
	log         *slog.Logger
	start       time.Time

	proc   *process.Process
	wire   *wsconn.Wire
	watch  *wsconn.Watchdog
	out    wsconn.Batch   // frames waiting for the wire: pumpOutput's own
	stdin  *process.Stdin // its own child's; a member's input goes to its stream
	member *member        // the session's place in a broadcast stream; nil in per-connection mode
	// reader reads a member's client through the readiness set; nil for
	// a session read by its own goroutine.
	reader atomic.Pointer[memberInput]
	pumped chan struct{} // closed when pumpOutput has returned; made by run
	ended  chan struct{} // closed once the session is logged (serveSession)
	// deflate says that messages to the client are compressed
	// (permessage-deflate was negotiated).
	deflate bool

	ends         wsconn.CloseRecord
	endedSound   bool         // the client's side ended with a close or an EOF, not a reset
	heardAt      atomic.Int64 // unix nanoseconds the client was last heard from
	dropReason   atomic.Pointer[string]
	msgsIn       atomic.Int64
	msgsOut      atomic.Int64 // data messages written to the socket
	bytesIn      atomic.Int64
	replacedUTF8 atomic.Bool
}

// newSession makes the session of a connection whose handshake hw has
// answered, for the admitted request q.
func newSession(g *Gateway, hw *wsconn.HijackWriter, q *request) *session {
	s := &session{
		gw:      g,
		client:  hw.Conn(),
		raw:     hw.Raw(),
		req:     q,
		peer:    q.client,
		remote:  q.client.Addr,
		uri:     q.r.URL.RequestURI(),
		ep:      q.endpoint,
		id:      q.id,
		log:     sessionLogger(g.log, q),
		start:   time.Now(),
		ended:   make(chan struct{}),
		deflate: hw.Deflate(),
	}
	wsconn.LimitUnsent(hw.Raw())
	s.wire = wsconn.NewWire(s.client, hw.Raw(), g.cfg.WriteTimeout)
	name := q.endpoint.Name // not all of q: every session holds this closure
	s.wire.Written = func(msgs, payload int64) {
		if s.msgsOut.Add(msgs) == msgs && msgs > 0 {
			g.observe.FirstMessage(name, time.Since(s.start))
		}
		g.observe.Messages(name, observe.Out, msgs, payload)
	}
	s.heard()
	s.watch = &wsconn.Watchdog{
		Wire:           s.wire,
		Interval:       g.cfg.PingInterval,
		WriteTimeout:   g.cfg.WriteTimeout,
		Heard:          func() time.Time { return time.Unix(0, s.heardAt.Load()) },
		CloseDelivered: s.ends.Deliver,
		Drop:           s.drop,
	}
	s.startLifetime()
	return s
}

// refuse ends a session before any child starts, with the refusal's close
// frame, counted and logged once.
func (s *session) refuse(ref *refusal) {
	code, reason := ref.code, ref.reason
	if s.req != nil {
		s.gw.noteRefusal(s.req, ref)
	}
	s.wire.Abandon(time.Now().Add(wsconn.ControlWriteWait))
	s.close(code, reason, closeAhead)
	_ = s.wire.WriteControls() // this goroutine is the only writer
	_ = s.client.SetReadDeadline(time.Now().Add(wsconn.CloseWait))
	s.clientEnded(s.copyInput()) // what it sends meanwhile is dropped: we are closing
	s.settle()
	s.client.Close()
	s.logAccess()
}

// run starts the child and serves the connection until both sides are done.
func (s *session) run(ctx context.Context) {
	proc, err := process.Start(processSpec(s.gw.cfg, s.req))
	if err != nil {
		s.gw.observe.ChildStartFailed(s.ep.Name)
		s.log.Error("command failed to start", "err", err)
		s.refuse(&refusal{code: websocket.CloseInternalServerErr, reason: "cannot start command: " + rootCause(err).Error(), level: slog.LevelInfo})
		return
	}
	s.gw.observe.ChildStarted(s.ep.Name)
	s.proc = proc
	s.stdin = process.NewStdin(proc.Stdin(), stdinCheckInterval)
	s.req = nil // all that is needed of it is in the child's environment
	s.log = s.log.With("pid", proc.Pid())
	s.wire.Wake = proc.Wake // the feeder writes what is asked while the child is quiet
	s.gw.setLive(proc, true)
	defer s.gw.setLive(proc, false)
	s.log.Log(ctx, logs.LevelTrace, "session started", "remote", s.remote, "path", s.uri)

	s.pumped = make(chan struct{})
	go s.pumpOutput()
	s.watch.Start()
	stopShutdownWatch := context.AfterFunc(ctx, s.goingAway)
	s.clientEnded(s.copyInput())
	stopShutdownWatch()

	s.proc.Stop()
	s.wire.Abandon(time.Now().Add(closeReplyWait))
	<-s.pumped
	s.watch.Stop()
	s.settle()
	s.client.Close()
	s.logAccess()
}

// pumpOutput is the only writer to the client. It feeds the child's output
// to it until the child's group is gone, then sends the close frame with the
// child's exit status after the last of the output, unless one was sent.
func (s *session) pumpOutput() {
	defer close(s.pumped)
	status := s.proc.Feed(s.gw.childOutput(s.ep.Name, sessionOut{s}, s.log, &s.replacedUTF8))
	s.gw.observe.ChildEnded(s.ep.Name, status)
	code, reason := closeCodeFor(status), status.String()
	if s.close(code, reason, closeAfterData) {
		s.log.Debug("child ended; closing", "code", code, "reason", reason)
	}
}

// processSpec is what to run for the admitted request q, with its CGI
// environment.
func processSpec(cfg Config, q *request) process.Spec {
	env := cgienv.Env{
		Request:    q.r,
		Remote:     q.client.Addr,
		HTTPS:      q.client.HTTPS,
		ID:         q.id,
		ScriptName: q.endpoint.ScriptName,
		PathInfo:   q.endpoint.PathInfo,
		Software:   cfg.ServerSoftware,
		PassEnv:    cfg.PassEnv,
		Identity:   q.identity,
	}
	if len(cfg.Subprotocols) > 0 {
		env.Subprotocol = &q.protocol
	}
	if cfg.ReverseLookup {
		env.RemoteHost = cgienv.LookupHost(q.client.Addr)
	}
	return process.Spec{
		Path:           q.endpoint.Path,
		Args:           q.endpoint.Args,
		Env:            env.List(),
		Grace:          cfg.CloseGrace,
		TerminalStdout: cfg.LineBuffer,
	}
}

// heard notes that the client was heard from.
func (s *session) heard() { s.heardAt.Store(time.Now().UnixNano()) }

// drop ends a client that is gone or too slow: the watchdog's verdict, or
// Abort's. The first reason given is the one logged. A client that accepts
// nothing while it pings us far faster than our pongs can go out is not
// merely slow: it floods us with pings, and the log says so.
func (s *session) drop(reason string) {
	if reason == wsconn.ReasonWriteTimeout && s.wire.PingsUnanswered() >= pingFlood {
		reason = "ping flood: client reads nothing"
	}
	s.dropReason.CompareAndSwap(nil, &reason)
	s.log.Debug("dropping client", "reason", reason)
	s.client.Close() // the reader returns, and the session ends
	if in := s.reader.Load(); in != nil {
		in.watch.Fire() // a closed socket leaves the set without a word
	}
}

// clientEnded records why the client's side ended, and whether the socket
// is still sound.
func (s *session) clientEnded(err error) {
	var (
		ce *websocket.CloseError
		pe *frames.ProtocolError
	)
	closed := errors.As(err, &ce)
	sound := closed || wsconn.IsTimeout(err) // not reset, nor closed by us
	switch {
	case closed && ce.Code != wsconn.CloseAbnormal:
		// onClose has recorded it
	case errors.As(err, &pe):
		// answered with its close frame (protocolError)
	default:
		reason := "connection dropped"
		if r := s.dropReason.Load(); r != nil {
			reason = *r
		} else if errors.Is(err, errClientGone) {
			reason = "client hung up"
		}
		s.ends.Lose(reason)
		s.log.Debug("client gone", "reason", reason, "err", err)
	}
	s.endedSound = sound
}

// settle counts what reached the client, once nothing more is written to
// it and while the socket is still open: only if it ended soundly, since a
// reset empties the socket of what the client never got.
func (s *session) settle() {
	if !s.endedSound {
		return
	}
	if unsent, ok := s.wire.Acknowledge(); ok && unsent == 0 && s.wire.CloseWritten() {
		s.ends.Deliver()
	}
}

// logAccess writes the access line and tells the observer the connection
// has ended.
func (s *session) logAccess() {
	code, reason := s.ends.Outcome()
	duration := time.Since(s.start)
	s.gw.observe.ConnectionClosed(s.ep.Name, code, duration)
	msgsOut, bytesOut := s.wire.Delivered()
	attrs := []any{"remote", s.remote}
	if s.peer.Proxy != "" {
		attrs = append(attrs, "proxy", s.peer.Proxy)
	}
	attrs = append(attrs,
		"path", s.uri,
		"duration", duration.Round(time.Millisecond),
	)
	if exit := s.childExit(); exit != "" {
		attrs = append(attrs, "exit", exit)
	}
	attrs = append(attrs,
		"close_code", code,
		"close_reason", reason,
		"msgs_in", s.msgsIn.Load(),
		"bytes_in", s.bytesIn.Load(),
		"msgs_out", msgsOut,
		"bytes_out", bytesOut,
	)
	s.log.Log(context.Background(), logs.LevelAccess, "session ended", attrs...)
}

// childExit returns how the session's child ended, or "" while a shared
// one still runs.
func (s *session) childExit() string {
	switch {
	case s.member != nil:
		exit := s.member.exitStatus()
		if exit == nil {
			return ""
		}
		return *exit
	case s.proc != nil:
		return s.proc.Status().String()
	}
	return ""
}

// rootCause returns the innermost error, such as "permission denied".
func rootCause(err error) error {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err
		}
		err = inner
	}
}
