package gateway

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/cgienv"
	"github.com/wsgate/wsgate/internal/fairness"
	"github.com/wsgate/wsgate/internal/httppolicy"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/internal/plainhttp"
	"github.com/wsgate/wsgate/internal/readiness"
	"github.com/wsgate/wsgate/internal/wsconn"
	"github.com/wsgate/wsgate/process"
)

// Config says what the gateway runs and how. The zero value of each limit
// means its default, as documented on the field.
type Config struct {
	// Command is the program (resolved path) and its arguments, run for
	// every connection. Exactly one of Command and Dir is set.
	Command []string
	// Dir makes every executable under it an endpoint: the URL path names
	// the file, and what follows it becomes PATH_INFO.
	Dir string
	// StaticDir serves its files for plain HTTP requests.
	StaticDir string
	// CGIDir serves its scripts as CGI for plain HTTP requests.
	CGIDir string
	// DevConsole serves the developer console for plain HTTP GET requests
	// to an endpoint.
	DevConsole bool
	// Origins lists the browser origins allowed besides the gateway's own:
	// "host", "host:port" or "scheme://host[:port]"; "*" allows any.
	Origins []string
	// LoopbackOnly says that every listener is on a loopback address (see
	// LoopbackAddr). Then a request whose Host is neither a loopback name
	// or address nor allowed by Origins is refused with 403, so that a page
	// whose name resolves to 127.0.0.1 (DNS rebinding) cannot reach it.
	LoopbackOnly bool
	// TrustedProxies are the reverse proxies whose forwarding headers are
	// believed: for a connection from one of them, the client's address
	// comes from X-Forwarded-For or Forwarded, TLS from X-Forwarded-Proto,
	// and the host the origin is compared with from X-Forwarded-Host.
	TrustedProxies []netip.Prefix
	// Headers are added to every response, HeadersWS to handshake
	// responses, HeadersHTTP to all others.
	Headers, HeadersWS, HeadersHTTP http.Header
	// ReverseLookup resolves the client's name into REMOTE_HOST.
	ReverseLookup bool
	// PassStderr sends stderr to the client too, every message then being
	// JSON: {"stream":"stdout"|"stderr","data":"..."}.
	PassStderr bool
	// Binary sends raw bytes both ways instead of lines.
	Binary bool
	// LineBuffer gives each child a pseudo-terminal in raw mode as its
	// stdout, so that programs that buffer what they write to a pipe (C
	// stdio, Python) send each line as they print it.
	LineBuffer bool
	// Subprotocols lists the subprotocols served. When set, a client that
	// offers some gets the first of its offers that is listed, named to
	// the child in WEBSOCKET_PROTOCOL; one that offers only others is
	// refused with 400; one that offers none is served, with
	// WEBSOCKET_PROTOCOL empty.
	Subprotocols []string
	// Compress negotiates permessage-deflate with clients that offer it:
	// messages to them are compressed, each on its own (no context
	// takeover), when that makes them smaller.
	Compress bool
	// MaxForks is the most concurrent children; 0 means unlimited.
	MaxForks int
	// MaxMessageSize is the largest client message accepted
	// (DefaultMaxMessageSize when 0).
	MaxMessageSize int64
	// MaxLineSize is the longest output line sent (DefaultMaxLineSize when 0).
	MaxLineSize int
	// CloseGrace is added to each step of the stop sequence (--closems).
	CloseGrace time.Duration
	// PingInterval is how often the client is pinged; a client silent for
	// two intervals is dropped. 0 turns pings off.
	PingInterval time.Duration
	// WriteTimeout is how long a client may accept nothing before it is
	// dropped (DefaultWriteTimeout when 0).
	WriteTimeout time.Duration
	// PassEnv holds "NAME=value" entries passed to every child.
	PassEnv []string
	// Broadcast shares one child per endpoint and query string among all
	// of its clients, started by the first.
	Broadcast bool
	// Replay is how many of a shared child's last messages a client that
	// joins gets first (broadcast mode), on top of its queue.
	Replay int
	// QueueSize bounds each broadcast client's queue, in messages
	// (DefaultQueueSize when 0). A client whose queue is full is closed
	// with 1013.
	QueueSize int
	// Linger is how long a shared child outlives its last client.
	Linger time.Duration
	// Bus shares each broadcast stream with the other instances on it, one
	// process for all of them (broadcast mode). Nil is broadcast.Local:
	// every stream stays in this instance.
	Bus broadcast.Bus
	// MaxConns bounds concurrent WebSocket connections; 0 means unlimited.
	MaxConns int
	// MaxConnsPerAddr bounds concurrent WebSocket connections from one
	// client address (an IPv6 /64), as TrustedProxies tell it; 0 means
	// unlimited. Over it, a connection is closed at once with 1013.
	MaxConnsPerAddr int
	// RateLimit is how many handshakes per second one client address may
	// make, in bursts of as many; over it, 429 with Retry-After. 0 means
	// unlimited.
	RateLimit float64
	// Auth says who may connect: the methods a request proves who it is
	// with, for handshakes and plain requests alike. Its zero value lets
	// anyone in. The child gets AUTH_TYPE and REMOTE_USER, and never the
	// credential.
	Auth auth.Methods
	// MaxLifetime closes a session that old with 1001 "session lifetime
	// reached"; 0 for no bound.
	MaxLifetime time.Duration
	// IdleTimeout closes a session with 1001 "idle" when no data message
	// went either way for that long (pings and pongs do not count); 0 for
	// no bound.
	IdleTimeout time.Duration
	// ServerSoftware is SERVER_SOFTWARE, e.g. "wsgate/1.0.0".
	ServerSoftware string
	// Logger receives every log line; slog.Default() when nil.
	Logger *slog.Logger
	// Observer is told what happens, for metrics; nil for none.
	Observer observe.Observer
}

func (c Config) withDefaults() Config {
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxLineSize <= 0 {
		c.MaxLineSize = DefaultMaxLineSize
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = observe.NopObserver{}
	}
	if c.Bus == nil {
		c.Bus = broadcast.Local{}
	}
	return c
}

// Gateway is an http.Handler that serves each WebSocket connection with its
// own child process. Its methods are safe for concurrent use.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	upgrader  websocket.Upgrader
	forks     *fairness.Limit   // children, shared ones included
	capacity  fairness.Capacity // what connections may hold: slots, per address, children
	shared    registry
	endpoints httppolicy.Router
	origins   httppolicy.Origins
	protocols httppolicy.Subprotocols
	proxies   httppolicy.Proxies
	observe   *observe.Counting
	rate      *fairness.RateLimiter // nil without a RateLimit
	plain     *plainhttp.Handler
	headers   *httppolicy.Headers // --header, --header-ws, --header-http

	// plainSteps and upgradeSteps are admission's checks (admission.go).
	plainSteps, upgradeSteps []step

	ctx    context.Context // cancelled when shutdown begins
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	live     map[*process.Process]struct{} // running children
	open     map[*session]struct{}         // sessions being served
	sessions sync.WaitGroup
	members  readiness.Lazy // where broadcast members wait for their clients; made for the first
	hooks    testHooks
}

// testHooks are what tests change of a gateway's behaviour, all in one
// place; the zero value is the real behaviour.
type testHooks struct {
	// memberOpening runs as a broadcast member is about to be counted open
	// (enter): a shutdown begun just then must still reach it.
	memberOpening func()
}

// New returns a gateway for cfg, or an error naming a directory or origin
// that cannot be used.
func New(cfg Config) (*Gateway, error) {
	cfg = cfg.withDefaults()
	g := &Gateway{
		cfg:     cfg,
		log:     cfg.Logger,
		forks:   fairness.NewLimit(cfg.MaxForks),
		shared:  registry{streams: make(map[string]*stream)},
		proxies: httppolicy.Proxies(cfg.TrustedProxies),
		observe: &observe.Counting{Observer: cfg.Observer},
		live:    make(map[*process.Process]struct{}),
		open:    make(map[*session]struct{}),
	}
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: handshakeTimeout,
		WriteBufferPool:  &sync.Pool{}, // gorilla's Conn gets no write buffer: it never writes
		// gorilla negotiates permessage-deflate, with the offers wsgate can
		// accept (offersForGorilla); the session decompresses what clients
		// send (internal/frames) and compresses what they are sent
		// (compress.go). gorilla's Conn is never used.
		EnableCompression: cfg.Compress,
		Error:             g.writeHandshakeError,
		CheckOrigin:       func(*http.Request) bool { return true }, // checked before, with a log line
	}
	var err error
	if g.endpoints, err = newRouter(cfg); err != nil {
		return nil, err
	}
	if g.origins, err = httppolicy.NewOrigins(cfg.Origins); err != nil {
		return nil, &ConfigError{Field: "Origins", Err: err}
	}
	if g.protocols, err = httppolicy.NewSubprotocols(cfg.Subprotocols); err != nil {
		return nil, &ConfigError{Field: "Subprotocols", Err: err}
	}
	var perAddress *fairness.Counter
	g.rate, perAddress = newFairness(cfg)
	g.capacity = fairness.Capacity{Conns: fairness.NewLimit(cfg.MaxConns), Forks: g.forks, PerAddress: perAddress}
	g.plainSteps, g.upgradeSteps = g.admissionSteps(false), g.admissionSteps(true)
	if g.plain, err = g.newPlainHandler(); err != nil {
		return nil, err
	}
	g.headers = httppolicy.NewHeaders(cfg.Headers, cfg.HeadersWS, cfg.HeadersHTTP)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g, nil
}

func newRouter(cfg Config) (httppolicy.Router, error) {
	switch {
	case cfg.Dir != "" && len(cfg.Command) > 0:
		return nil, errors.New("give either Command or Dir, not both")
	case cfg.Dir != "":
		r, err := httppolicy.NewDirRouter(cfg.Dir)
		if err != nil {
			return nil, &ConfigError{Field: "Dir", Err: err}
		}
		return r, nil
	case len(cfg.Command) == 0:
		return nil, errors.New("no command given")
	}
	return httppolicy.CommandRouter{Command: cfg.Command}, nil
}

func (g *Gateway) newPlainHandler() (*plainhttp.Handler, error) {
	h := &plainhttp.Handler{Console: g.cfg.DevConsole, Endpoints: g.endpoints, Forks: g.forks}
	if g.cfg.CGIDir != "" {
		r, err := httppolicy.NewDirRouter(g.cfg.CGIDir)
		if err != nil {
			return nil, &ConfigError{Field: "CGIDir", Err: err}
		}
		h.CGI = &r
		h.CGIEnv = append([]string{"SERVER_SOFTWARE=" + g.cfg.ServerSoftware}, g.cfg.PassEnv...)
	}
	if g.cfg.StaticDir != "" {
		static, err := plainhttp.NewStatic(g.cfg.StaticDir)
		if err != nil {
			return nil, &ConfigError{Field: "StaticDir", Err: err}
		}
		h.Static = static
	}
	return h, nil
}

// ServeHTTP upgrades WebSocket handshakes and runs a session for each; other
// requests go to the developer console, CGI scripts or static files. Every
// request goes through admission first (admission.go).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httppolicy.AddTo(w, g.headers.All)
	q, ref := g.admit(r)
	if ref != nil {
		// Refusals are plain HTTP responses and carry --header; a
		// completed handshake carries --header and --header-ws.
		g.refuseHTTP(w, q, ref)
		return
	}
	if !q.upgrade {
		httppolicy.AddTo(w, g.headers.Plain)
		g.plain.Serve(w, q.r, cgienv.IdentityEnv(q.identity))
		return
	}
	if !g.track() {
		g.refuseHTTP(w, q, &refusal{status: http.StatusServiceUnavailable, reason: "server shutting down",
			metric: observe.RefusedShutdown, level: slog.LevelDebug})
		return
	}
	q.id = newSessionID()
	g.serveWebSocket(w, q)
}

// track counts a new session, unless shutdown has begun.
func (g *Gateway) track() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.sessions.Add(1)
	return true
}

// Draining reports whether shutdown has begun. It takes the gateway's lock,
// so a call that returns also shows the gateway is not stuck.
func (g *Gateway) Draining() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Shutdown closes every session with 1001, stops every child and waits until
// all sessions have ended or ctx is done. New handshakes are refused.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	var members []*session
	for s := range g.open {
		if s.member != nil {
			members = append(members, s)
		}
	}
	g.mu.Unlock()
	// Members first: cancelling stops the shared children, and a child
	// that exits at once would end its stream (1000) ahead of the 1001.
	for _, s := range members {
		s.goingAway()
	}
	g.cancel() // sessions with a child of their own go away by themselves

	done := make(chan struct{})
	go func() {
		g.sessions.Wait()
		g.members.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Abort ends every child and every session at once, for a shutdown that
// cannot wait: each child's group gets SIGKILL, and each connection still
// open is dropped ("shutdown cut short"), so that its access line tells
// whether its close frame was delivered. It waits (a second at most) until
// the children are reaped and the sessions have logged, so that no zombie
// and no untold session is left when the program exits.
func (g *Gateway) Abort() {
	g.mu.Lock()
	g.closed = true
	procs := slices.Collect(maps.Keys(g.live))
	open := slices.Collect(maps.Keys(g.open))
	g.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, s := range open {
		s.drop("shutdown cut short")
	}
	deadline := time.After(abortWait)
	for _, p := range procs {
		select {
		case <-p.Done():
		case <-deadline:
			return
		}
	}
	for _, s := range open {
		select {
		case <-s.ended:
		case <-deadline:
			return
		}
	}
}

// setOpen adds or removes a session being served. Shutdown tells the
// broadcast members it finds open to go away, since they have no goroutine
// to notice; one added after that is told here.
func (g *Gateway) setOpen(s *session, open bool) {
	g.mu.Lock()
	if !open {
		delete(g.open, s)
		g.mu.Unlock()
		return
	}
	g.open[s] = struct{}{}
	late := g.closed && s.member != nil
	g.mu.Unlock()
	if late {
		s.goingAway()
	}
}

// setLive adds or removes a running child.
func (g *Gateway) setLive(p *process.Process, live bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if live {
		g.live[p] = struct{}{}
	} else {
		delete(g.live, p)
	}
}

// serveWebSocket takes the capacity the connection needs, joins its
// broadcast stream if it has one, upgrades the connection and hands it to a
// session goroutine, owned by the gateway: returning from the handler lets
// net/http free what it kept for the request, which an idle session would
// otherwise hold for its whole life. A connection over a limit, or whose
// stream cannot be joined, is upgraded holding nothing and closed at once
// (browsers cannot read an HTTP status). Shutdown waits for the session.
func (g *Gateway) serveWebSocket(w http.ResponseWriter, q *request) {
	held, ref := g.reserve(q)
	var m *member
	if ref == nil && g.cfg.Broadcast {
		m = &member{}
		if err := g.join(m, q); err != nil { // before the response: see join
			held.Release()
			held, ref, m = nil, joinRefusal(err), nil
		}
	}
	hw := &wsconn.HijackWriter{ResponseWriter: w}
	_, err := g.upgrader.Upgrade(hw, g.offersForGorilla(q.r, q.client), g.headers.ForHandshake(q.protocol, g.protocols != nil))
	if err != nil {
		g.log.Debug("handshake failed", "remote", q.client.Addr, "path", q.r.URL.Path, "err", err)
		if m != nil {
			g.leave(m)
		}
		held.Release()
		g.sessions.Done()
		return
	}
	s := newSession(g, hw, q)
	s.held = held
	g.observe.ConnectionOpened(q.endpoint.Name)
	if m != nil {
		s.enter(g.ctx, m)
		if sr := s.plainReader(); sr != nil && s.watchMember(sr) {
			return // the readiness set has it now
		}
	}
	go g.serveSession(s, m, ref)
}

// joinRefusal is the refusal of a client that could not join its stream.
func joinRefusal(err error) *refusal {
	switch {
	case errors.Is(err, errTooManyForks):
		return &refusedTooMany
	case errors.Is(err, errBusUnavailable):
		return &refusedBus
	}
	return &refusal{code: websocket.CloseInternalServerErr, reason: err.Error(), level: slog.LevelInfo}
}

// serveSession runs a session to its end: a refusal, a member of a broadcast
// stream, or a client with its own child.
func (g *Gateway) serveSession(s *session, m *member, ref *refusal) {
	g.setOpen(s, true)
	defer g.sessionEnded(s)
	switch {
	case ref != nil:
		s.refuse(ref)
	case m != nil:
		s.runMember()
	default:
		s.run(g.ctx)
	}
}

// sessionEnded tells the gateway a session has ended and logged, which
// Shutdown and Abort wait for.
func (g *Gateway) sessionEnded(s *session) {
	s.life.Stop()
	s.held.Release()
	g.setOpen(s, false)
	close(s.ended)
	g.sessions.Done()
}

// writeHandshakeError answers a handshake gorilla refuses, with its status
// and a one-line reason. Admission has checked what gorilla checks, so
// this is a connection that failed under the upgrade.
func (g *Gateway) writeHandshakeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	g.observe.HandshakeRefused(observe.RefusedBadRequest)
	w.Header().Set("Sec-Websocket-Version", "13")
	http.Error(w, reason.Error(), status)
}

// newSessionID returns the connection's UNIQUE_ID: a random decimal number,
// as websocketd's. It needs to be unique, not secret.
func newSessionID() string {
	return strconv.FormatUint(rand.Uint64()>>1, 10)
}
