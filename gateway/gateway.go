// Package gateway is wsgate's HTTP and WebSocket side: it upgrades requests,
// runs one supervised child process per connection, frames the child's lines
// as messages, and shuts every session down cleanly. It reads no flags: the
// caller describes what to run in a Config.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxMessageSize = 1 << 20  // websocketd's --maxframesize default
	DefaultMaxLineSize    = 16 << 20 // the outbound limit on one line
	DefaultWriteTimeout   = 60 * time.Second
)

// Timeouts of the handshake and of the close handshake.
const (
	// handshakeTimeout bounds writing the handshake response.
	handshakeTimeout = 5 * time.Second
	// closeWait is how long a peer has to answer our close frame before the
	// TCP connection is closed anyway; the contract is "within a second".
	closeWait = time.Second
	// controlWriteWait bounds writing one control frame.
	controlWriteWait = time.Second
	// stdinCheckInterval is how often a write to a child that does not read
	// its stdin wakes to check whether the client hung up meanwhile.
	stdinCheckInterval = time.Second
)

// Config says what the gateway runs and how. The zero value of each limit
// means its default, as documented on the field.
type Config struct {
	// Command is the program (resolved path) and its arguments.
	Command []string
	// Binary sends raw bytes both ways instead of lines.
	Binary bool
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
	// ServerSoftware is SERVER_SOFTWARE, e.g. "wsgate/1.0.0".
	ServerSoftware string
	// Logger receives every log line; slog.Default() when nil.
	Logger *slog.Logger
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Gateway is an http.Handler that serves each WebSocket connection with its
// own child process. Its methods are safe for concurrent use.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	forks    *forkLimit

	ctx    context.Context // cancelled when shutdown begins
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	live     map[*session]struct{} // sessions with a running child
	sessions sync.WaitGroup
}

// New returns a gateway for cfg.
func New(cfg Config) *Gateway {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Gateway{
		cfg: cfg,
		log: cfg.Logger,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: handshakeTimeout,
			Error:            writeHandshakeError,
		},
		forks:  newForkLimit(cfg.MaxForks),
		live:   make(map[*session]struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
}

// ServeHTTP upgrades WebSocket handshakes and runs a session for each; any
// other request gets 404.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.NotFound(w, r)
		return
	}
	if !g.track() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer g.sessions.Done()
	g.serveWebSocket(w, r)
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

// Shutdown closes every session with 1001, stops every child and waits until
// all sessions have ended or ctx is done. New handshakes are refused.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()

	done := make(chan struct{})
	go func() {
		g.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Abort kills every child at once, for a shutdown that cannot wait.
func (g *Gateway) Abort() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for s := range g.live {
		s.proc.Kill()
	}
}

// setLive adds or removes a session with a running child.
func (g *Gateway) setLive(s *session, live bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if live {
		g.live[s] = struct{}{}
	} else {
		delete(g.live, s)
	}
}

func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.log.Debug("handshake failed", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
		return
	}
	s := newSession(g, conn, r, newSessionID())
	if !g.forks.acquire() {
		s.refuse(websocket.CloseTryAgainLater, "too many connections")
		return
	}
	defer g.forks.release()
	s.run(g.ctx)
}

// writeHandshakeError answers a bad handshake with its status and a one-line
// reason.
func writeHandshakeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	w.Header().Set("Sec-Websocket-Version", "13")
	http.Error(w, reason.Error(), status)
}

// newSessionID returns the connection's UNIQUE_ID: a random decimal number,
// as websocketd's.
func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:])>>1, 10)
}

// forkLimit counts running children against --maxforks.
type forkLimit struct {
	slots chan struct{} // nil when unlimited
}

func newForkLimit(max int) *forkLimit {
	if max <= 0 {
		return &forkLimit{}
	}
	return &forkLimit{slots: make(chan struct{}, max)}
}

func (f *forkLimit) acquire() bool {
	if f.slots == nil {
		return true
	}
	select {
	case f.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (f *forkLimit) release() {
	if f.slots != nil {
		<-f.slots
	}
}
