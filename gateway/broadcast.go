package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/process"
)

// Broadcast mode (--broadcast): one shared child per endpoint and query
// string. The first client starts it with its own environment; every line it
// prints is framed once and published to the stream, whose subscribers are
// the clients' sessions (members); what any client sends reaches its stdin
// whole. The last client to leave stops it, after the linger time.

// Refusals of a client that cannot join a stream.
var (
	errTooManyForks = errors.New("too many connections")
	errNoStart      = errors.New("cannot start command")
)

// sharedChild is the process behind one broadcast stream, and the stream.
type sharedChild struct {
	g        *Gateway
	endpoint string // the script's URL path, for the observer
	key      string // endpoint and query string
	proc     *process.Process
	stdin    *childStdin
	stream   *broadcast.Stream
	bs       *busStream // the stream on the bus, when there is one
	log      *slog.Logger
	start    time.Time

	// Guarded by the registry's lock.
	members  int
	linger   *time.Timer
	stopping bool // no longer in the registry: joins start a new child

	stopOnShutdown func() bool
	exit           atomic.Pointer[string] // how it ended, once it has
	replaced       atomic.Bool
}

// registry holds the running shared children by key, and on a bus, the
// streams this instance has members of or leads.
type registry struct {
	mu       sync.Mutex
	children map[string]*sharedChild
	buses    map[string]*busStream
}

// join makes m a member of the stream of r's endpoint and query string,
// starting its shared child if there is none. It is called before the
// handshake response is sent, so that every line printed after that reaches
// the client.
func (g *Gateway) join(m *member, r *http.Request, c client, e endpoint, id string) error {
	if g.cfg.Bus != nil {
		return g.joinBus(m, r, c, e, id)
	}
	key := e.scriptName + "?" + r.URL.RawQuery
	spec := processSpec(g.cfg, r, c, e, id) // outside the lock: it may look up a name
	reg := &g.shared
	reg.mu.Lock()
	defer reg.mu.Unlock()
	sc := reg.children[key]
	if sc == nil {
		var err error
		stream := broadcast.NewStream(g.cfg.QueueSize, g.cfg.Replay)
		if sc, err = g.startShared(e.scriptName, key, spec, c.addr, stream, nil); err != nil {
			return err
		}
		reg.children[key] = sc
	}
	sub, ok := sc.stream.Join(m, g.cfg.Replay > 0)
	if !ok { // cannot happen: a stream ends only after it leaves the registry
		return errNoStart
	}
	sc.members++
	if sc.linger != nil {
		sc.linger.Stop()
		sc.linger = nil
	}
	m.sc, m.sub = sc, sub
	g.observe.BroadcastSubscribers(e.scriptName, 1)
	return nil
}

// startShared starts the shared child of key, a stream of endpoint, and its
// feeder publishing to stream, and to the bus with bs; reg.mu is held.
func (g *Gateway) startShared(endpoint, key string, spec process.Spec, remote string, stream *broadcast.Stream, bs *busStream) (*sharedChild, error) {
	if !g.forks.acquire() {
		return nil, errTooManyForks
	}
	proc, err := process.Start(spec)
	if err != nil {
		g.forks.release()
		g.observe.ChildStartFailed(endpoint)
		g.log.Error("command failed to start", "path", key, "err", err)
		return nil, fmt.Errorf("%w: %v", errNoStart, rootCause(err))
	}
	g.observe.ChildStarted(endpoint)
	sc := &sharedChild{
		g:        g,
		endpoint: endpoint,
		key:      key,
		proc:     proc,
		stdin:    newChildStdin(proc.Stdin()),
		stream:   stream,
		bs:       bs,
		log:      g.log.With("stream", key, "pid", proc.Pid()),
		start:    time.Now(),
	}
	g.sessions.Add(1) // Shutdown waits for the shared child too
	g.setLive(proc, true)
	sc.stopOnShutdown = context.AfterFunc(g.ctx, proc.Stop)
	sc.log.Log(context.Background(), logs.LevelTrace, "shared process started", "remote", remote)
	go sc.pumpOutput()
	return sc, nil
}

// leave takes a member out of its stream. The last member to leave stops
// the shared child, after the linger time unless someone joins meanwhile.
func (g *Gateway) leave(m *member) {
	if m.bs != nil {
		g.leaveBus(m)
		return
	}
	reg := &g.shared
	reg.mu.Lock()
	defer reg.mu.Unlock()
	sc := m.sc
	sc.stream.Leave(m.sub)
	sc.members--
	g.observe.BroadcastSubscribers(sc.endpoint, -1)
	if sc.members > 0 || sc.stopping {
		return
	}
	if g.cfg.Linger <= 0 {
		sc.stopLocked()
		return
	}
	sc.linger = time.AfterFunc(g.cfg.Linger, func() {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		if sc.members == 0 && !sc.stopping {
			sc.stopLocked()
		}
	})
}

// stopLocked takes the child out of the registry and stops it; the
// registry's lock is held.
func (sc *sharedChild) stopLocked() {
	sc.forgetLocked()
	sc.proc.Stop()
}

// forgetLocked takes the child out of the registry, so that the next client
// starts a new one; the registry's lock is held.
func (sc *sharedChild) forgetLocked() {
	sc.stopping = true
	if sc.linger != nil {
		sc.linger.Stop()
		sc.linger = nil
	}
	if sc.g.shared.children[sc.key] == sc {
		delete(sc.g.shared.children, sc.key)
	}
}

// pumpOutput feeds the shared child's output to the stream until its group
// is gone, then ends the stream with the child's exit status: every member
// gets its close frame after the lines it has queued. On a bus, the output
// and the end go to the bus too.
func (sc *sharedChild) pumpOutput() {
	g := sc.g
	defer g.sessions.Done()
	defer g.forks.release()
	defer g.setLive(sc.proc, false)
	defer sc.stopOnShutdown()
	var out frameOut = streamOut{sc}
	if sc.bs != nil {
		out = &busOut{sc: sc, bs: sc.bs}
	}
	status := sc.proc.Feed(outputWriters(g.cfg, sinkConfig{
		out:      out,
		maxLine:  g.cfg.MaxLineSize,
		log:      sc.log,
		replaced: &sc.replaced,
	}))
	g.observe.ChildEnded(sc.endpoint)
	exit := status.String()
	sc.exit.Store(&exit)
	if sc.bs != nil {
		sc.bs.childEnded(sc, status, out.(*busOut))
	} else {
		g.shared.mu.Lock()
		sc.forgetLocked()
		g.shared.mu.Unlock()
		sc.stream.End(&broadcast.Message{Data: closeFrame(closeCodeFor(status), exit), Last: true})
	}
	sc.stream.Wait() // its delivery workers have woken every member for the end
	published, joined, _ := sc.stream.Stats()
	sc.log.Log(context.Background(), logs.LevelAccess, "shared process ended",
		"duration", time.Since(sc.start).Round(time.Millisecond),
		"exit", exit,
		"clients", joined,
		"msgs_out", published)
}

// streamOut is a shared child's frameOut: each message is encoded once and
// published to every member; under --compress, compressed once too, for the
// members that negotiated permessage-deflate. Lines are gathered whole, so
// that every member and every replay starts at the start of a message.
type streamOut struct{ sc *sharedChild }

func (o streamOut) frame(op byte, fin bool, payload []byte, ends bool) error {
	o.sc.stream.Publish(o.sc.g.sharedMessage(op, fin, payload))
	return nil
}

// sharedMessage is one message of a broadcast stream, framed once for
// every member, and under --compress compressed once for the members that
// negotiated permessage-deflate.
func (g *Gateway) sharedMessage(op byte, fin bool, payload []byte) *broadcast.Message {
	data := appendFrameHeader(make([]byte, 0, maxFrameHeader+len(payload)), op, fin, len(payload))
	msg := &broadcast.Message{Data: append(data, payload...), Size: len(payload)}
	g.compressShared(msg, op, fin, payload)
	return msg
}

// compressShared gives msg its compressed frame under --compress, when
// that is smaller.
func (g *Gateway) compressShared(msg *broadcast.Message, op byte, fin bool, payload []byte) {
	if g.cfg.Compress && op != opContinuation && fin {
		if f := appendMessageFrame(nil, op, payload, true); f[0]&rsv1Bit != 0 {
			msg.Compressed = f
		}
	}
}

func (o streamOut) flush() error  { return nil }
func (o streamOut) streams() bool { return false }

// failed ends the stream when a line is over the limit: every member gets
// 1009, and the child is stopped, as one client's child would be.
func (o streamOut) failed(err error) error {
	if errors.Is(err, errLineTooLong) {
		o.sc.log.Error("output line over the limit; closing every client", "limit", o.sc.g.cfg.MaxLineSize)
		o.sc.stream.End(&broadcast.Message{Data: closeFrame(websocket.CloseMessageTooBig, "output line too long"), Last: true})
		o.sc.proc.Stop()
	}
	return err
}

// member is a session's place in a broadcast stream: the sink the stream
// wakes. Woken by a delivery worker, it sends what waits at once, as far as
// the client's socket takes it without waiting; what does not go at once,
// and the control frames, a pump sends: a goroutine only while there is
// something to write, so that an idle member holds none. One of the two
// writes at a time (running), and it is the wire's only writer.
type member struct {
	sc  *sharedChild // without a bus
	bs  *busStream   // on a bus
	sub *broadcast.Subscriber

	mu         sync.Mutex
	s          *session // set once the handshake response is sent
	running    bool     // a worker or the pump is writing
	again      bool     // woken meanwhile: look again before stopping
	pending    bool     // woken before the session was ready
	overflowed bool     // cut off before the session was ready
	stopped    bool     // the session has ended: nothing more is written
	writers    sync.WaitGroup

	taken []*broadcast.Message // taken and not yet encoded: the writer's own
}

// exitStatus returns how the stream's process ended, or nil while it runs.
func (m *member) exitStatus() *string {
	if m.bs != nil {
		return m.bs.exit.Load()
	}
	return m.sc.exit.Load()
}

// Wake sends what waits, or has the writer at work look again.
func (m *member) Wake() {
	m.mu.Lock()
	switch {
	case m.stopped:
		m.mu.Unlock()
		return
	case m.s == nil:
		m.pending = true
		m.mu.Unlock()
		return
	case m.running:
		m.again = true
		m.mu.Unlock()
		return
	}
	m.running = true
	m.writers.Add(1)
	m.mu.Unlock()
	for m.sendNow() {
		if m.done() {
			return
		}
	}
	go m.pump()
}

// Overflow closes the client with 1013: it fell too far behind.
func (m *member) Overflow() {
	m.mu.Lock()
	s := m.s
	if s == nil {
		m.overflowed = true
	}
	m.mu.Unlock()
	if s != nil {
		s.tooSlow()
	}
}

// ready attaches the session, once the handshake response is sent, and
// starts what was asked before.
func (m *member) ready(s *session) {
	m.mu.Lock()
	m.s = s
	pending, overflowed := m.pending, m.overflowed
	m.mu.Unlock()
	if overflowed {
		s.tooSlow()
	}
	if pending {
		m.Wake()
	}
}

// stop waits for the writer at work and lets no other start.
func (m *member) stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.writers.Wait()
}

// done ends the writer's turn, and reports false when it was woken
// meanwhile and must look again.
func (m *member) done() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.again {
		m.again = false
		return false
	}
	m.running = false
	m.writers.Done()
	return true
}

// takeBatch is how many messages a member's writer takes from the stream at
// a time, into an array on its stack: a chunk's worth of short lines.
const takeBatch = 256

// sendNow sends the messages waiting, as far as the client's socket takes
// them at once, and reports whether all went: if not, the pump is to send
// the rest (what the batch holds, then m.taken, then the stream's). Control
// frames waiting, the stream's end and a TLS connection are the pump's too.
func (m *member) sendNow() bool {
	s, w := m.s, m.s.wire
	var scratch [takeBatch]*broadcast.Message // on the stack: no allocation per line
	for {
		// A chunk at most: writeNow writes a batch of one.
		taken := m.sub.Take(scratch[:0], writeChunk)
		if len(taken) == 0 {
			return !w.controlsWaiting()
		}
		if n := m.encode(taken); n < len(taken) {
			m.taken = append(m.taken[:0], taken[n:]...)
			s.out.shrink()
			return false
		}
		if !w.writeNow(&s.out) {
			s.out.shrink() // the pump may be a while coming
			return false
		}
	}
}

// encode adds the messages to the session's batch, each as encoded once
// for every member (compressed once for the members that negotiated
// permessage-deflate), and returns how many it added: it stops before the
// stream's end, and before a message the batch has no room for.
func (m *member) encode(msgs []*broadcast.Message) int {
	s := m.s
	for i, msg := range msgs {
		data := msg.Data
		if s.deflate && msg.Compressed != nil {
			data = msg.Compressed
		}
		if msg.Last || s.out.full(len(data)) {
			return i
		}
		s.out.encoded(data, msg.Size)
	}
	return len(msgs)
}

// pump sends what sendNow left, the control frames asked for, and what the
// stream holds for the member, until nothing waits.
func (m *member) pump() {
	for {
		m.drain()
		if m.done() {
			return
		}
	}
}

// drain writes what the batch holds, the control frames asked for and
// every message waiting, and after the last one the stream's close frame.
// It stops at a write that fails: the wire then takes nothing more.
func (m *member) drain() {
	s, w := m.s, m.s.wire
	if w.write(&s.out) != nil { // what sendNow could not finish, if anything
		return
	}
	var scratch [takeBatch]*broadcast.Message // on the stack: no allocation per line
	taken := m.taken                          // what sendNow took and left, if anything
	m.taken = nil                             // an idle member holds no buffer
	for {
		if len(taken) == 0 {
			if taken = m.sub.Take(scratch[:0], batchLimit); len(taken) == 0 {
				return
			}
		}
		n := m.encode(taken)
		if n < len(taken) && taken[n].Last {
			_ = w.write(&s.out)
			s.streamEnded(taken[n].Data)
			return
		}
		taken = taken[n:]
		if w.write(&s.out) != nil {
			return
		}
	}
}

// enter makes the session a member of its stream, once the handshake
// response is sent: the watchdog starts, the session counts as open, and
// what waited for it is written. It runs on the handshake's goroutine: a
// member read through the readiness set has no goroutine of its own, and
// Shutdown finds it among the open sessions (setOpen).
func (s *session) enter(ctx context.Context, m *member) {
	s.member = m
	s.req = nil
	key := ""
	if m.sc != nil {
		s.proc = m.sc.proc
		s.stdin = m.sc.stdin
		s.log = s.log.With("pid", s.proc.Pid())
		key = m.sc.key
	} else {
		key = m.bs.key // the process may run on another instance
	}
	s.wire.wake = m.Wake
	s.log.Log(ctx, logs.LevelTrace, "session started", "remote", s.remote, "path", s.uri, "stream", key)
	s.watch.start()
	s.gw.mu.Lock()
	opening := s.gw.memberOpening
	s.gw.mu.Unlock()
	if opening != nil {
		opening()
	}
	// Open before ready: a shutdown begun meanwhile closes it with 1001,
	// ahead of the stream's end.
	s.gw.setOpen(s, true)
	m.ready(s)
}

// goingAwayMember closes a member because the gateway is shutting down. Its
// shared child is the gateway's to stop.
func (s *session) goingAwayMember() {
	s.closeWith(websocket.CloseGoingAway, "server shutting down")
}

// runMember serves a member under TLS, or one the readiness set cannot
// take, until the client's side ends: the session's goroutine reads the
// client and writes to the shared stdin (copyInput); the
// member's writers write to the client.
func (s *session) runMember() {
	s.clientEnded(s.copyInput())
	s.endMember()
}

// endMember ends a member whose client's side is over: it leaves the
// stream, its writers finish within the close handshake's bound, and its
// access line is logged. The shared child is not the session's to stop.
func (s *session) endMember() {
	m := s.member
	s.gw.leave(m)
	s.wire.abandon(time.Now().Add(closeReplyWait))
	m.Wake() // a close reply, if one is asked for
	m.stop()
	s.watch.stop()
	s.settle()
	s.client.Close()
	s.logAccess()
}

// plainReader returns a reader of the member's socket, unless the
// connection is under TLS: then the session's goroutine reads it.
func (s *session) plainReader() *socketReader {
	if s.wire.rawWrite == nil {
		return nil
	}
	return newSocketReader(s.raw)
}

// tooSlow closes a member whose queue is full with 1013.
func (s *session) tooSlow() {
	if s.ends.send(websocket.CloseTryAgainLater, "client too slow") {
		s.gw.observe.SlowClient(s.ep.scriptName)
		s.log.Info("client too slow; closing", "queue", s.gw.cfg.QueueSize)
		s.wire.closeBehind(closeFrame(websocket.CloseTryAgainLater, "client too slow"))
	}
}

// streamEnded sends the stream's close frame after everything before it,
// unless the session has one already.
func (s *session) streamEnded(frame []byte) {
	if code, reason := closeFrameContent(frame); s.ends.send(code, reason) {
		_ = s.wire.closeAfterFrame(frame)
		s.watch.poke()
		return
	}
	_ = s.wire.writeControls()
}
