package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// Broadcast mode (--broadcast): one process per endpoint and query string,
// shared by all of its clients, the members of its stream. The first client
// starts it with its own environment; every line it prints is framed once
// and published to the stream (source.go); what any client sends reaches its
// stdin whole (bus.go). The last client to leave stops it, after the linger
// time.
//
// Every stream goes through a broadcast.Bus, and the hub here never knows
// which: Config.Bus (redisbus shares each stream with the other instances
// on one Redis, one process for all of them), or without one broadcast.Local,
// where this instance alone has the stream and leads it. On this instance a
// stream holds its local fan-out (a broadcast.Stream), its members here and
// its link to the bus. While this instance leads the stream, its own process
// (a source) feeds the local fan-out and the bus; otherwise the bus does. A
// change of leader (the leader died) leaves the local stream, and its
// members, in place: only the process behind it changes. However a stream
// ends (its process exited, a line too long, a broken link, a process that
// cannot start on a takeover, a leader letting go as the gateway shuts
// down), one method ends it: end.

// Refusals of a client that cannot join a stream; errNoStart comes wrapped
// with its cause.
var (
	errTooManyForks   = errors.New("too many connections")
	errNoStart        = errors.New("cannot start command")
	errBusUnavailable = errors.New("bus unavailable")
)

// stream is one broadcast stream on this instance.
type stream struct {
	g        *Gateway
	endpoint string       // the script's URL path, for the observer
	key      string       // endpoint and query string
	spec     process.Spec // the first local client's, to start the process with if this instance leads
	remote   string       // that client's address, for the log
	fanout   *broadcast.Stream
	log      *slog.Logger

	ready chan struct{}  // closed once attached, or failed to
	link  broadcast.Link // set before ready is closed, unless err is
	err   error
	epoch string // the stream's history on the bus, set before ready is closed

	// tagger makes a message's tagged form, for the members that follow
	// positions (resume.go): made once, so that no writer allocates one.
	tagger func(*broadcast.Message) *broadcast.Tagged

	done   chan struct{}          // closed when the stream leaves the registry
	leader atomic.Pointer[source] // the local process, while this instance leads
	exit   atomic.Pointer[string] // how the stream ended, once it has

	// Guarded by the registry's lock.
	members  int  // joined, and joining
	present  bool // as last told to the link
	gone     bool // out of the registry: the next client attaches anew
	ended    bool // end has run
	audience int  // instances with members, as the bus last told the leader
	linger   *time.Timer
}

// registry holds the streams this instance has members of or leads, by
// key.
type registry struct {
	mu      sync.Mutex
	streams map[string]*stream
}

// join makes m a member of the stream of r's endpoint and query string,
// attaching the stream to the bus first if this instance has no member of
// it yet. It is called before the handshake response is sent, so that
// every line printed after that reaches the client. A refusal is
// errTooManyForks, errNoStart or errBusUnavailable.
func (g *Gateway) join(m *member, q *request) error {
	key := q.endpoint.Name + "?" + q.r.URL.RawQuery
	spec := processSpec(g.cfg, q) // outside the lock: it may look up a name
	m.follow = q.follow
	for range joinAttempts {
		st, creator := g.streamFor(q.endpoint.Name, key, spec, q.client.Addr)
		if creator {
			st.attach(m)
		}
		<-st.ready
		if st.err != nil {
			g.unreserve(st, m)
			if errors.Is(st.err, errTooManyForks) || errors.Is(st.err, errNoStart) {
				return st.err
			}
			return errBusUnavailable
		}
		if creator {
			st.link.Start() // after the first member joined: nothing it should get is missed
			return nil
		}
		st.catchUp(m.follow)
		if g.joinLocal(st, m) {
			return nil
		}
	}
	return errBusUnavailable
}

// streamFor returns the stream of key, a stream of endpoint, with a place
// reserved for a member, and whether it is new: its caller must attach it.
func (g *Gateway) streamFor(endpoint, key string, spec process.Spec, remote string) (*stream, bool) {
	reg := &g.shared
	reg.mu.Lock()
	defer reg.mu.Unlock()
	st := reg.streams[key]
	creator := st == nil
	if creator {
		st = &stream{
			g:        g,
			endpoint: endpoint,
			key:      key,
			spec:     spec,
			remote:   remote,
			fanout:   broadcast.NewStream(g.cfg.QueueSize, g.cfg.Replay),
			log:      g.log.With("stream", key),
			ready:    make(chan struct{}),
			done:     make(chan struct{}),
			present:  true, // Attach makes the instance present
			audience: -1,
		}
		st.tagger = st.tagMessage
		reg.streams[key] = st
	}
	st.members++
	return st, creator
}

// attach attaches the stream to the bus, fills the local replay with the
// bus's, and joins m, its first member. When no instance led the stream,
// this one leads it now: its process starts here, after m joined and before
// the handshake response, so that m gets every line it prints and the
// client's first message reaches it.
func (st *stream) attach(m *member) {
	defer close(st.ready)
	g := st.g
	ctx, cancel := context.WithTimeout(g.ctx, attachTimeout)
	defer cancel()
	link, at, err := g.cfg.Bus.Attach(ctx, st.key, st)
	if err != nil {
		st.log.Error("cannot attach the stream to the bus", "err", err)
		st.err = err
		return
	}
	st.epoch = at.Epoch
	st.fanout.Begin(at.Epoch, at.Seq-uint64(len(at.Replay))+1)
	for _, msg := range at.Replay {
		st.fanout.Publish(st.fromBus(msg)) // no member yet: the replay buffer only
	}
	st.link = link
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	st.joinLocked(m) // a new stream: it cannot have ended
	if at.Lead {
		if _, st.err = st.leadLocked(); st.err != nil {
			link.Close() // lets go of the lead: another instance may start it
		}
	}
}

// unreserve gives up a place reserved in a stream that could not attach,
// and m's place in it if m is its first member.
func (g *Gateway) unreserve(st *stream, m *member) {
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	if m.bs == st {
		st.fanout.Leave(m.sub)
		g.observe.BroadcastSubscribers(st.endpoint, -1)
		m.bs, m.sub = nil, nil
	}
	st.members--
	st.forgetLocked()
}

// joinLocal joins m to the local fan-out of a stream it has a place
// reserved in, and reports false if the stream has ended, or is ending,
// meanwhile.
func (g *Gateway) joinLocal(st *stream, m *member) bool {
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	return st.joinLocked(m)
}

// joinLocked is joinLocal with the registry's lock held.
func (st *stream) joinLocked(m *member) bool {
	g := st.g
	sub, ok := st.subscribe(m)
	if !ok || st.gone {
		if ok {
			st.fanout.Leave(sub)
		}
		st.members--
		return false
	}
	m.bs, m.sub = st, sub
	g.observe.BroadcastSubscribers(st.endpoint, 1)
	st.stopLingerLocked()
	if !st.present {
		st.present = true
		st.link.SetPresent(true)
	}
	return true
}

// leave takes a member out of its stream. An instance that does not lead
// detaches from the stream with its last member; the leader stays, and
// stops its process when no instance has members (Audience).
func (g *Gateway) leave(m *member) {
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	st := m.bs
	st.fanout.Leave(m.sub)
	st.members--
	g.observe.BroadcastSubscribers(st.endpoint, -1)
	switch {
	case st.members > 0 || st.gone:
	case st.leader.Load() != nil:
		st.present = false
		st.link.SetPresent(false)
	default:
		st.forgetLocked()
		st.link.Close()
	}
}

// stopLocked stops the leader's process, since no instance has members:
// the stream leaves the registry at once, so that the next client starts
// anew, and ends once the process has exited. The registry's lock is held.
func (st *stream) stopLocked(src *source) {
	st.forgetLocked()
	src.proc.Stop()
}

// stopLingerLocked cancels the linger; the registry's lock is held.
func (st *stream) stopLingerLocked() {
	if st.linger != nil {
		st.linger.Stop()
		st.linger = nil
	}
}

// forgetLocked takes the stream out of the registry, so that the next
// client attaches anew; the registry's lock is held.
func (st *stream) forgetLocked() {
	if st.gone {
		return
	}
	st.gone = true
	close(st.done)
	st.stopLingerLocked()
	if st.g.shared.streams[st.key] == st {
		delete(st.g.shared.streams, st.key)
	}
}

// end ends the stream on this instance, once, with frame, a close frame:
// every member here gets it after what it has queued, the stream leaves the
// registry, and its link is closed. With everywhere, the leader's end goes
// to the other instances too; without, they stay, and another instance
// takes the lead. It does not stop the process.
func (st *stream) end(frame []byte, everywhere bool) {
	g := st.g
	g.shared.mu.Lock()
	ended := st.ended
	st.ended = true
	st.forgetLocked()
	g.shared.mu.Unlock()
	if ended {
		return
	}
	last := &broadcast.Message{Data: frame, Last: true}
	_, reason := frames.CloseContent(frame)
	st.exit.Store(&reason)
	st.fanout.End(last)
	if everywhere {
		if err := st.link.Publish([]*broadcast.Message{last}); err != nil {
			st.log.Debug("end of the stream not published", "err", err)
		}
	}
	st.link.Close()
}

// enter makes the session a member of its stream, once the handshake
// response is sent: the watchdog starts, the session counts as open, and
// what waited for it is written. It runs on the handshake's goroutine: a
// member read through the readiness set has no goroutine of its own, and
// Shutdown finds it among the open sessions (setOpen).
func (s *session) enter(ctx context.Context, m *member) {
	s.member = m
	s.req = nil
	if src := m.bs.leader.Load(); src != nil { // else it runs on another instance
		s.log = s.log.With("pid", src.proc.Pid())
	}
	s.wire.Wake = m.Wake
	s.log.Log(ctx, logs.LevelTrace, "session started", "remote", s.remote, "path", s.uri, "stream", m.bs.key)
	s.watch.Start()
	s.gw.mu.Lock()
	opening := s.gw.hooks.memberOpening
	s.gw.mu.Unlock()
	if opening != nil {
		opening()
	}
	// Open before ready: a shutdown begun meanwhile closes it with 1001,
	// ahead of the stream's end.
	s.gw.setOpen(s, true)
	m.ready(s)
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
	s.wire.Abandon(time.Now().Add(closeReplyWait))
	m.Wake() // a close reply, if one is asked for
	m.stop()
	s.watch.Stop()
	s.settle()
	s.client.Close()
	s.logAccess()
}

// plainReader returns a reader of the member's socket, unless the
// connection is under TLS: then the session's goroutine reads it.
func (s *session) plainReader() *wsconn.SocketReader {
	if !s.wire.WritesDirectly() {
		return nil
	}
	return wsconn.NewSocketReader(s.raw)
}

// tooSlow closes a member whose queue is full with 1013.
func (s *session) tooSlow() {
	if s.close(websocket.CloseTryAgainLater, "client too slow", closeBehind) {
		s.gw.observe.SlowClient(s.ep.Name)
		s.log.Info("client too slow; closing", "queue", s.gw.cfg.QueueSize)
	}
}

// streamEnded sends the stream's close frame after everything before it,
// unless the session has one already.
func (s *session) streamEnded(frame []byte) {
	code, reason := frames.CloseContent(frame)
	s.close(code, reason, closeAfterData)
}
