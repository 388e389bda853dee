package gateway

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/process"
)

// closeAbnormal is the code logged for a connection that ended without any
// close frame (RFC 6455 reserves 1006 for exactly this).
const closeAbnormal = websocket.CloseAbnormalClosure

// session is one WebSocket connection and the child behind it.
//
// The goroutine that runs it owns it: it starts the child and the output
// copier, reads the client itself, and returns only after the copier has
// finished and the child's whole group is reaped. The output copier is the
// only writer of data messages; control frames go through WriteControl,
// which gorilla allows from any goroutine. The child's own supervisor, in
// package process, logs its stderr.
type session struct {
	gw           *Gateway
	conn         *websocket.Conn
	batch        *batchConn    // what conn writes to
	raw          net.Conn      // the connection under any TLS
	clientReader *bufio.Reader // what conn reads from
	req          *http.Request // the handshake, until the child starts
	remote, uri  string        // of the handshake, for the logs
	ep           endpoint
	id           string
	log          *slog.Logger
	start        time.Time
	proc         *process.Process
	started      chan struct{} // closed once proc and log are set: the output writers wait for it

	deadlineMu sync.Mutex // orders read-deadline changes
	closing    bool       // a close frame was sent; guarded by deadlineMu
	lastExtend time.Time  // when the ping deadline was last pushed back

	stdinDeadline time.Time // when a blocked stdin write next wakes; guarded by deadlineMu

	closeMu     sync.Mutex
	closeCode   int // first close code sent or received; 0 while open
	closeReason string

	msgsIn, bytesIn, msgsOut, bytesOut atomic.Int64
	replacedUTF8                       atomic.Bool
}

func newSession(g *Gateway, conn *websocket.Conn, hw *hijackWriter, r *http.Request, e endpoint, id string) *session {
	return &session{
		gw:           g,
		conn:         conn,
		batch:        hw.conn,
		raw:          hw.raw,
		clientReader: hw.reader,
		req:          r,
		remote:       r.RemoteAddr,
		uri:          r.URL.RequestURI(),
		ep:           e,
		id:           id,
		log:          g.log.With("id", id),
		start:        time.Now(),
		started:      make(chan struct{}),
	}
}

// refuse ends a session before any child starts, with a close frame.
func (s *session) refuse(code int, reason string) {
	s.log.Info("connection refused", "remote", s.remote, "path", s.uri, "reason", reason)
	s.sendClose(code, reason)
	s.readUntilClosed()
	s.conn.Close()
	s.logAccess()
}

// run starts the child and serves the connection until both sides are done.
func (s *session) run(ctx context.Context) {
	spec := s.spec()
	proc, err := process.Start(spec)
	if err != nil {
		s.log.Error("command failed to start", "err", err)
		s.refuse(websocket.CloseInternalServerErr, truncateReason("cannot start command: "+rootCause(err).Error()))
		return
	}
	s.proc = proc
	s.req = nil // all that is needed of it is in the child's environment
	s.gw.setLive(s, true)
	defer s.gw.setLive(s, false)
	s.log = s.log.With("pid", proc.Pid())
	close(s.started)
	s.log.Log(ctx, LevelTrace, "session started", "remote", s.remote, "path", s.uri)

	s.configureConn()
	stopShutdownWatch := context.AfterFunc(ctx, s.goingAway)
	defer stopShutdownWatch()
	pings := s.startPings()
	defer pings.stop()

	s.noteReadEnd(s.copyInput())
	s.conn.Close() // unblocks a write to a client that is gone
	s.proc.Stop()  // returns once the supervisor is done with the output too
	s.proc.Close()
	s.logAccess()
}

func (s *session) spec() process.Spec {
	cfg := s.gw.cfg
	env := cgiEnv{
		req:        s.req,
		id:         s.id,
		scriptName: s.ep.scriptName,
		pathInfo:   s.ep.pathInfo,
		software:   cfg.ServerSoftware,
		passEnv:    cfg.PassEnv,
	}
	if cfg.ReverseLookup {
		env.remoteHost = lookupHost(s.req.RemoteAddr)
	}
	spec := process.Spec{
		Path:  s.ep.path,
		Args:  s.ep.args,
		Env:   env.list(),
		Grace: cfg.CloseGrace,
	}
	switch {
	case cfg.Binary:
		spec.Stdout = chunkSink{s: s}
	case cfg.PassStderr:
		spec.Stdout = &lineSink{s: s, stream: "stdout"}
		spec.Stderr = &lineSink{s: s, stream: "stderr"}
	default:
		spec.Stdout = &lineSink{s: s}
	}
	if spec.Stderr == nil {
		spec.Stderr = &stderrLog{s: s}
	}
	spec.Done = s.childDone
	return spec
}

func (s *session) configureConn() {
	s.conn.SetReadLimit(s.gw.cfg.MaxMessageSize)
	s.conn.SetCloseHandler(s.onClose)
	s.conn.SetPongHandler(func(string) error {
		s.extendReadDeadline(true)
		return nil
	})
	s.extendReadDeadline(true)
}

// onClose records the client's close code and answers it.
func (s *session) onClose(code int, text string) error {
	s.recordClose(code, text)
	msg := websocket.FormatCloseMessage(code, "")
	if code == websocket.CloseNoStatusReceived {
		msg = websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	}
	_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlWriteWait))
	return nil
}

// goingAway closes the session because the gateway is shutting down.
func (s *session) goingAway() {
	s.sendClose(websocket.CloseGoingAway, "server shutting down")
}

// sendClose sends a close frame, unless one was sent or received already,
// and gives the client closeWait to answer it.
func (s *session) sendClose(code int, reason string) {
	if !s.recordClose(code, reason) {
		return
	}
	msg := websocket.FormatCloseMessage(code, reason)
	_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlWriteWait))
	s.deadlineMu.Lock()
	s.closing = true
	_ = s.conn.SetReadDeadline(time.Now().Add(closeWait))
	if s.proc != nil {
		_ = s.proc.Stdin().SetWriteDeadline(time.Now()) // a blocked write gives up now
	}
	s.deadlineMu.Unlock()
}

// recordClose keeps the first close code of the session and reports whether
// this was it.
func (s *session) recordClose(code int, reason string) bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closeCode != 0 {
		return false
	}
	s.closeCode, s.closeReason = code, reason
	return true
}

// extendReadDeadline pushes back the time by which the client must have been
// heard from: two ping intervals. Unless forced it does so at most a few
// times per interval, since it is called for every message.
func (s *session) extendReadDeadline(force bool) {
	interval := s.gw.cfg.PingInterval
	if interval <= 0 {
		return
	}
	s.deadlineMu.Lock()
	defer s.deadlineMu.Unlock()
	now := time.Now()
	if s.closing || !force && now.Sub(s.lastExtend) < interval/4 {
		return
	}
	s.lastExtend = now
	_ = s.conn.SetReadDeadline(now.Add(2 * interval))
}

func (s *session) isClosing() bool {
	s.deadlineMu.Lock()
	defer s.deadlineMu.Unlock()
	return s.closing
}

// readUntilClosed reads and discards until the client answers the close
// frame or closeWait passes.
func (s *session) readUntilClosed() {
	for {
		if _, _, err := s.conn.NextReader(); err != nil {
			return
		}
	}
}

// noteReadEnd records why the connection ended when no close frame did.
func (s *session) noteReadEnd(err error) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != closeAbnormal {
		s.recordClose(ce.Code, ce.Text)
		return
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		s.recordClose(websocket.CloseMessageTooBig, "message too big")
		return
	}
	reason := "connection dropped"
	if isTimeout(err) {
		reason = "ping timeout"
	}
	if s.recordClose(closeAbnormal, reason) {
		s.log.Debug("client gone", "reason", reason, "err", err)
	}
}

func (s *session) logAccess() {
	s.closeMu.Lock()
	code, reason := s.closeCode, s.closeReason
	s.closeMu.Unlock()
	attrs := []any{
		"remote", s.remote,
		"path", s.uri,
		"duration", time.Since(s.start).Round(time.Millisecond),
	}
	if s.proc != nil {
		attrs = append(attrs, "exit", s.proc.Status().String())
	}
	attrs = append(attrs,
		"close_code", code,
		"close_reason", reason,
		"msgs_in", s.msgsIn.Load(),
		"bytes_in", s.bytesIn.Load(),
		"msgs_out", s.msgsOut.Load(),
		"bytes_out", s.bytesOut.Load(),
	)
	s.log.Log(context.Background(), LevelAccess, "session ended", attrs...)
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

// truncateReason fits a close reason in a control frame (123 bytes), cut at
// a character boundary.
func truncateReason(reason string) string {
	const max = 123
	if len(reason) <= max {
		return reason
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
