package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/process"
)

// Broadcast mode on a bus (Config.Bus): each stream is shared with the other
// instances on the bus, one process for all of them. On this instance a
// busStream holds the stream's local fan-out (a broadcast.Stream, as
// without a bus), its local members, and its link to the bus. While this
// instance leads the stream, its own process feeds the local stream and the
// bus; otherwise the bus does. A change of leader (the leader died) leaves
// the local stream, and its members, in place: only the process behind it
// changes.
//
// The stream's end on the bus (the process exited) ends the local stream
// with the process's close code, on every instance; a broken link ends it on
// this instance with 1012 "service restart".

// errBusUnavailable refuses a client whose stream cannot reach the bus.
var errBusUnavailable = errors.New("bus unavailable")

// Bus timings.
const (
	// busAttachTimeout bounds the handshake's wait for the bus.
	busAttachTimeout = 2 * time.Second
	// busJoinAttempts is how often a join tries again when the stream it
	// found ended meanwhile.
	busJoinAttempts = 3
)

// busStream is one stream shared on the bus, on this instance.
type busStream struct {
	g        *Gateway
	endpoint string // the script's URL path, for the observer
	key      string
	spec     process.Spec // the first local client's, to start the process with if this instance leads
	remote   string
	stream   *broadcast.Stream
	log      *slog.Logger

	ready chan struct{}  // closed once attached, or failed to
	link  broadcast.Link // set before ready is closed, unless err is
	err   error

	done   chan struct{}               // closed when the stream leaves the registry
	leader atomic.Pointer[sharedChild] // the local process, while this instance leads
	exit   atomic.Pointer[string]      // how the process ended, once it has

	// Guarded by the registry's lock.
	members  int  // joined, and joining
	present  bool // as last told to the link
	gone     bool
	audience int // instances with members, as the bus last told the leader
	linger   *time.Timer
}

// joinBus is join for a gateway on a bus: it makes m a member of the
// local stream of r's endpoint and query string, attaching it to the bus
// first if this instance has no member of it yet.
func (g *Gateway) joinBus(m *member, q *request) error {
	e, c := q.endpoint, q.client
	key := e.Name + "?" + q.r.URL.RawQuery
	spec := processSpec(g.cfg, q) // outside the lock: it may look up a name
	for range busJoinAttempts {
		bs, creator := g.busStreamFor(e.Name, key, spec, c.Addr)
		if creator {
			bs.attach()
		}
		<-bs.ready
		if bs.err != nil {
			g.unreserve(bs)
			if errors.Is(bs.err, errTooManyForks) || errors.Is(bs.err, errNoStart) {
				return bs.err
			}
			return errBusUnavailable
		}
		joined := g.joinLocal(bs, m)
		if creator {
			bs.link.Start() // after the first member joined: nothing it should get is missed
		}
		if joined {
			return nil
		}
	}
	return errBusUnavailable
}

// busStreamFor returns the stream of key, a stream of endpoint, with a place
// reserved for a member, and whether it is new: its caller must attach it.
func (g *Gateway) busStreamFor(endpoint, key string, spec process.Spec, remote string) (*busStream, bool) {
	reg := &g.shared
	reg.mu.Lock()
	defer reg.mu.Unlock()
	bs := reg.buses[key]
	creator := bs == nil
	if creator {
		bs = &busStream{
			g:        g,
			endpoint: endpoint,
			key:      key,
			spec:     spec,
			remote:   remote,
			stream:   broadcast.NewStream(g.cfg.QueueSize, g.cfg.Replay),
			log:      g.log.With("stream", key),
			ready:    make(chan struct{}),
			done:     make(chan struct{}),
			present:  true, // Attach makes the instance present
			audience: -1,
		}
		reg.buses[key] = bs
	}
	bs.members++
	return bs, creator
}

// attach attaches the stream to the bus and fills the local replay with
// the bus's. When no instance led the stream, this one leads it now: its
// process starts here, before the handshake response, as without a bus, so
// that the client's first message reaches it.
func (bs *busStream) attach() {
	defer close(bs.ready)
	g := bs.g
	ctx, cancel := context.WithTimeout(g.ctx, busAttachTimeout)
	defer cancel()
	link, at, err := g.cfg.Bus.Attach(ctx, bs.key, bs)
	if err != nil {
		bs.log.Error("cannot attach the stream to the bus", "err", err)
		bs.err = err
		return
	}
	for _, m := range at.Replay {
		bs.stream.Publish(bs.fromBus(m)) // no member yet: the replay buffer only
	}
	bs.link = link
	if !at.Lead {
		return
	}
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	sc, err := g.startShared(bs.endpoint, bs.key, bs.spec, bs.remote, bs.stream, bs)
	if err != nil {
		bs.err = err
		link.Close() // lets go of the lead: another instance may start it
		return
	}
	bs.leader.Store(sc)
}

// unreserve gives up a place reserved in a stream that could not attach.
func (g *Gateway) unreserve(bs *busStream) {
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	bs.members--
	bs.forgetLocked()
}

// joinLocal joins m to the local stream, and reports false if the stream
// has ended meanwhile.
func (g *Gateway) joinLocal(bs *busStream, m *member) bool {
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	sub, ok := bs.stream.Join(m, g.cfg.Replay > 0)
	if !ok || bs.gone {
		if ok {
			bs.stream.Leave(sub)
		}
		bs.members--
		return false
	}
	m.bs, m.sub = bs, sub
	g.observe.BroadcastSubscribers(bs.endpoint, 1)
	if bs.linger != nil {
		bs.linger.Stop()
		bs.linger = nil
	}
	if !bs.present {
		bs.present = true
		bs.link.SetPresent(true)
	}
	return true
}

// leaveBus takes a member out of its stream. An instance that does not
// lead detaches from the stream with its last member; the leader stays,
// and stops its process when no instance has members (Audience).
func (g *Gateway) leaveBus(m *member) {
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	bs := m.bs
	bs.stream.Leave(m.sub)
	bs.members--
	g.observe.BroadcastSubscribers(bs.endpoint, -1)
	switch {
	case bs.members > 0 || bs.gone:
	case bs.leader.Load() != nil:
		bs.present = false
		bs.link.SetPresent(false)
	default:
		bs.forgetLocked()
		bs.link.Close()
	}
}

// forgetLocked takes the stream out of the registry, so that the next
// client attaches anew; the registry's lock is held.
func (bs *busStream) forgetLocked() {
	if bs.gone {
		return
	}
	bs.gone = true
	close(bs.done)
	if bs.linger != nil {
		bs.linger.Stop()
		bs.linger = nil
	}
	if bs.g.shared.buses[bs.key] == bs {
		delete(bs.g.shared.buses, bs.key)
	}
}

// Lead starts the process: this instance leads the stream now. A process
// that cannot start ends the stream everywhere, as it would refuse a client
// without a bus.
func (bs *busStream) Lead() {
	g := bs.g
	if !g.track() { // shutting down
		return
	}
	defer g.sessions.Done()
	g.shared.mu.Lock()
	if bs.gone || bs.leader.Load() != nil {
		g.shared.mu.Unlock()
		return
	}
	sc, err := g.startShared(bs.endpoint, bs.key, bs.spec, bs.remote, bs.stream, bs)
	if err == nil {
		bs.leader.Store(sc)
		bs.log.Debug("leading the stream", "pid", sc.proc.Pid())
	}
	g.shared.mu.Unlock()
	if err != nil {
		code := websocket.CloseInternalServerErr
		if errors.Is(err, errTooManyForks) {
			code = websocket.CloseTryAgainLater
		}
		bs.endEverywhere(closeFrame(code, err.Error()), nil)
	}
}

// Deliver passes on a message of the leader's: the last one ends the local
// stream.
func (bs *busStream) Deliver(m *broadcast.Message) {
	if !m.Last {
		bs.stream.Publish(bs.fromBus(m))
		return
	}
	_, reason := closeFrameContent(m.Data)
	bs.exit.Store(&reason)
	bs.stream.End(m)
	bs.g.shared.mu.Lock()
	bs.forgetLocked()
	bs.g.shared.mu.Unlock()
	bs.link.Close()
}

// fromBus readies a message from the bus for the local members: the bus
// carries the frame only, so under --compress each instance compresses it
// once for its own members.
func (bs *busStream) fromBus(m *broadcast.Message) *broadcast.Message {
	if bs.g.cfg.Compress && len(m.Data) > 0 && m.Size <= len(m.Data) {
		bs.g.compressShared(m, m.Data[0]&0x0f, m.Data[0]&finBit != 0, m.Data[len(m.Data)-m.Size:])
	}
	return m
}

// Input writes what a client on another instance sent to the process's
// stdin, whole, after any other client's write under way; it gives up when
// the stream ends.
func (bs *busStream) Input(p []byte) {
	if sc := bs.leader.Load(); sc != nil {
		if err := sc.stdin.writeUntil(p, bs.done); err != nil {
			bs.log.Debug("input from another instance not written", "err", err)
		}
	}
}

// Audience stops the process, after the linger time, when no instance has
// members.
func (bs *busStream) Audience(instances int) {
	g := bs.g
	g.shared.mu.Lock()
	defer g.shared.mu.Unlock()
	bs.audience = instances
	sc := bs.leader.Load()
	switch {
	case bs.gone || sc == nil:
	case instances > 0 || bs.members > 0:
		if bs.linger != nil {
			bs.linger.Stop()
			bs.linger = nil
		}
	case g.cfg.Linger <= 0:
		sc.proc.Stop()
	case bs.linger == nil:
		bs.linger = time.AfterFunc(g.cfg.Linger, func() {
			g.shared.mu.Lock()
			defer g.shared.mu.Unlock()
			if bs.linger != nil && bs.audience == 0 && bs.members == 0 && !bs.gone {
				bs.linger = nil
				sc.proc.Stop()
			}
		})
	}
}

// Fail ends the stream here with 1012: the link is broken, and lines may
// have been missed. The process, if this instance ran it, is stopped; the
// other instances' members stay, and another instance takes the lead.
func (bs *busStream) Fail(err error) {
	bs.g.shared.mu.Lock()
	bs.forgetLocked()
	sc := bs.leader.Load()
	bs.g.shared.mu.Unlock()
	if sc != nil {
		sc.proc.Stop()
	}
	reason := "service restart"
	bs.exit.Store(&reason)
	bs.stream.End(&broadcast.Message{Data: closeFrame(websocket.CloseServiceRestart, reason), Last: true})
	bs.link.Close()
}

// childEnded ends the stream once the leader's process has exited: every
// member on every instance gets the close code. A gateway shutting down
// only lets go of the lead, for another instance to take.
func (bs *busStream) childEnded(sc *sharedChild, status process.Status, out *busOut) {
	exit := status.String()
	end := &broadcast.Message{Data: closeFrame(closeCodeFor(status), exit), Last: true}
	g := bs.g
	g.shared.mu.Lock()
	ended := bs.gone // ended already: failed, or ended everywhere
	bs.forgetLocked()
	bs.leader.Store(nil)
	g.shared.mu.Unlock()
	if ended {
		return
	}
	bs.exit.Store(&exit)
	bs.stream.End(end)
	if g.ctx.Err() == nil {
		out.publish(end)
	}
	bs.link.Close()
}

// endEverywhere ends the stream on every instance with the close frame,
// after what is pending: pending messages not yet published.
func (bs *busStream) endEverywhere(frame []byte, pending []*broadcast.Message) {
	end := &broadcast.Message{Data: frame, Last: true}
	_, reason := closeFrameContent(frame)
	bs.g.shared.mu.Lock()
	bs.forgetLocked()
	bs.g.shared.mu.Unlock()
	bs.exit.Store(&reason)
	bs.stream.End(end)
	if err := bs.link.Publish(append(pending, end)); err != nil {
		bs.log.Debug("end of the stream not published", "err", err)
	}
	bs.link.Close()
}

// input passes what a member sent to the process: to its stdin while this
// instance leads, else through the bus. While the leader's queue is full,
// it waits, as a write to a stdin that is not read does, waking every
// stdinCheckInterval to see whether the client has hung up or the session
// is closing.
func (bs *busStream) input(s *session, p []byte) error {
	for {
		if sc := bs.leader.Load(); sc != nil {
			return s.writeStdinTo(sc.stdin, p)
		}
		select {
		case <-bs.done:
			return errStdinClosed
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), stdinCheckInterval)
		err := bs.link.Send(ctx, p)
		cancel()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, context.DeadlineExceeded):
			s.log.Info("client input lost: the bus failed", "err", err, "bytes", len(p))
			return nil
		case s.ends.closingByUs() || peerHungUp(s.raw):
			return errClientGone
		}
	}
}

// lastInput passes the messages a member's client sent as it left, within
// wait.
func (bs *busStream) lastInput(p []byte, wait time.Duration) error {
	if sc := bs.leader.Load(); sc != nil {
		return sc.stdin.writeLast(p, wait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return bs.link.Send(ctx, p)
}

// busOut is the leader's frameOut: each message is encoded once, published
// to the local members at once, and to the bus at each flush (a batch of
// at most batchLimit bytes): when the pipe holds nothing more for now.
type busOut struct {
	sc    *sharedChild
	bs    *busStream
	batch []*broadcast.Message
	size  int
}

func (o *busOut) frame(op byte, fin bool, payload []byte, ends bool) error {
	msg := o.sc.g.sharedMessage(op, fin, payload)
	o.sc.stream.Publish(msg)
	o.batch = append(o.batch, msg)
	o.size += len(msg.Data)
	if o.size >= batchLimit {
		return o.flush()
	}
	return nil
}

// flush publishes the batch to the bus.
func (o *busOut) flush() error {
	if len(o.batch) == 0 {
		return nil
	}
	err := o.bs.link.Publish(o.batch)
	clear(o.batch)
	o.batch, o.size = o.batch[:0], 0
	if cap(o.batch) > 64 {
		o.batch = nil // a quiet process keeps no big batch
	}
	return err
}

// publish publishes the batch and m after it, for the end of the stream.
func (o *busOut) publish(m *broadcast.Message) {
	if err := o.bs.link.Publish(append(o.batch, m)); err != nil {
		o.bs.log.Debug("end of the stream not published", "err", err)
	}
	o.batch, o.size = nil, 0
}

func (o *busOut) streams() bool { return false }

// failed ends the stream everywhere with 1009 when a line is over the
// limit, and stops the process, as without a bus. An error of the bus has
// failed the link already, which stopped the process.
func (o *busOut) failed(err error) error {
	if errors.Is(err, errLineTooLong) {
		o.bs.log.Error("output line over the limit; closing every client", "limit", o.sc.g.cfg.MaxLineSize)
		o.bs.endEverywhere(closeFrame(websocket.CloseMessageTooBig, "output line too long"), o.batch)
		o.batch, o.size = nil, 0
		o.sc.proc.Stop()
	}
	return err
}
