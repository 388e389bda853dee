// Package httpserver serves an HTTP handler, a WebSocket gateway, on its
// listeners: TCP addresses, a Unix socket, sockets systemd passes, TLS, and a
// plain port that redirects to the main one. It bounds what a request may
// take before it is handled, and at shutdown closes at once the connections
// that have not sent a whole request yet, then lets the handler drain.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/httppolicy"
	"github.com/wsgate/wsgate/internal/logs"
)

// Timeouts of the plain HTTP side.
const (
	// readHeaderTimeout bounds how long request headers may take to arrive,
	// so that a slow client cannot hold a connection open without a request.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout bounds a kept-alive HTTP connection between requests.
	idleTimeout = 60 * time.Second
	// maxHeaderBytes bounds the request headers; more gets 431.
	maxHeaderBytes = 64 << 10
)

// listenConfig turns TCP keep-alive off for accepted connections: WebSocket
// pings find dead peers, and the probes' options cost four system calls per
// connection.
var listenConfig = net.ListenConfig{KeepAlive: -1}

// Listeners says where a Server listens.
type Listeners struct {
	// Inherited are listeners opened already, such as the sockets systemd
	// passes: served like those of Addrs, and closed by the Server.
	Inherited []net.Listener
	// Addrs are TCP addresses ("host:port", "[::1]:port", ":port").
	Addrs []string
	// UnixSocket is a Unix socket path to listen on too; "" for none.
	UnixSocket string
	// TLS, when set, makes every main listener speak TLS.
	TLS *tls.Config
	// RedirectAddrs are plain-HTTP addresses whose every request is
	// redirected to RedirectPort (--redirport).
	RedirectAddrs []string
	// RedirectPort is the main port redirects point to.
	RedirectPort int
	// Console says the developer console is served: a main listener's
	// start-up line names the page to open too.
	Console bool
}

// Handler is what a Server serves: an http.Handler that can drain the
// connections it took over (hijacked), which http.Server cannot.
type Handler interface {
	http.Handler
	// Shutdown ends every connection the handler serves, and waits until
	// they have ended or ctx is done.
	Shutdown(ctx context.Context) error
}

// Server serves a Handler on its listeners.
type Server struct {
	gw        Handler
	main      *http.Server
	redirect  *http.Server
	listeners []net.Listener // main listeners
	redirects []net.Listener
	fresh     *freshConns // of both HTTP servers
	log       *slog.Logger
	tls       bool // the main listeners speak TLS
	console   bool // the developer console is served
}

// Listen opens every listener of ls for gw. On error, the ones already open
// are closed.
func Listen(ls Listeners, gw Handler, logger *slog.Logger) (*Server, error) {
	fresh := newFreshConns()
	s := &Server{
		gw:      gw,
		log:     logger,
		fresh:   fresh,
		main:    newHTTPServer(gw, fresh, logger),
		tls:     ls.TLS != nil,
		console: ls.Console,
	}
	if err := s.open(ls); err != nil {
		s.closeListeners()
		return nil, err
	}
	if len(s.redirects) > 0 {
		s.redirect = newHTTPServer(redirectHandler(ls.RedirectPort, ls.TLS != nil), fresh, logger)
	}
	return s, nil
}

func newHTTPServer(h http.Handler, fresh *freshConns, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         fresh.track,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), logs.LevelDebug),
	}
}

func (s *Server) open(ls Listeners) error {
	s.listeners = append(s.listeners, ls.Inherited...)
	for _, addr := range ls.Addrs {
		l, err := listenConfig.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.listeners = append(s.listeners, l)
	}
	if ls.UnixSocket != "" {
		l, err := listenUnix(ls.UnixSocket)
		if err != nil {
			return err
		}
		s.listeners = append(s.listeners, l)
	}
	if ls.TLS != nil {
		for i, l := range s.listeners {
			s.listeners[i] = tls.NewListener(l, ls.TLS)
		}
	}
	for _, addr := range ls.RedirectAddrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s for redirects: %w", addr, err)
		}
		s.redirects = append(s.redirects, l)
	}
	return nil
}

// listenUnix listens on a Unix socket, replacing a stale socket file left by
// an earlier run but never any other kind of file.
func listenUnix(path string) (net.Listener, error) {
	if info, err := os.Lstat(path); err == nil {
		if info.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("unix socket %s exists and is not a socket", path)
		}
		if conn, err := net.Dial("unix", path); err == nil {
			conn.Close()
			return nil, fmt.Errorf("unix socket %s is in use by another server", path)
		}
		_ = os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// redirectHandler sends every request to the same host and path on the main
// port.
func redirectHandler(port int, tls bool) http.Handler {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _ := httppolicy.SplitHostPort(r.Host)
		target := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + r.URL.RequestURI()
		http.Redirect(w, r, target, http.StatusMovedPermanently)
	})
}

// Addrs returns the main addresses listened on, with the ports chosen for
// port 0.
func (s *Server) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		addrs[i] = l.Addr()
	}
	return addrs
}

// RedirectAddrs returns the addresses of the redirecting listeners.
func (s *Server) RedirectAddrs() []net.Addr {
	addrs := make([]net.Addr, len(s.redirects))
	for i, l := range s.redirects {
		addrs[i] = l.Addr()
	}
	return addrs
}

// Serve accepts connections on every listener until Shutdown. It returns nil
// after Shutdown, or the first listener's error.
func (s *Server) Serve() error {
	errs := make(chan error, len(s.listeners)+len(s.redirects))
	var wg sync.WaitGroup
	serve := func(srv *http.Server, l net.Listener, what string, urls ...any) {
		s.log.Info(what, append([]any{"addr", l.Addr().String()}, urls...)...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- srv.Serve(l)
		}()
	}
	for _, l := range s.listeners {
		serve(s.main, l, "listening", s.urls(l.Addr())...)
	}
	for _, l := range s.redirects {
		serve(s.redirect, l, "redirecting")
	}
	err := <-errs
	if !errors.Is(err, http.ErrServerClosed) {
		s.main.Close() // one listener failed: stop the others too
		if s.redirect != nil {
			s.redirect.Close()
		}
	}
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// urls returns the log attributes that name what to open on the main
// listener at addr: the WebSocket URL, and the console's page when it is
// served. A wildcard address is named by the machine's host name, as
// websocketd does; a Unix socket has no URL.
func (s *Server) urls(addr net.Addr) []any {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "localhost"
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		}
	}
	hostPort := net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	ws, page := "ws://", "http://"
	if s.tls {
		ws, page = "wss://", "https://"
	}
	attrs := []any{"url", ws + hostPort + "/"}
	if s.console {
		attrs = append(attrs, "console", page+hostPort+"/")
	}
	return attrs
}

// Shutdown stops accepting, closes every session with 1001, stops every
// child, and waits for all of it, or until ctx is done. Connections that
// have not sent a whole request yet are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.fresh.closeAll()
	httpDone := make(chan error, 2)
	go func() { httpDone <- s.main.Shutdown(ctx) }()
	go func() {
		if s.redirect != nil {
			httpDone <- s.redirect.Shutdown(ctx)
			return
		}
		httpDone <- nil
	}()
	gwErr := s.gw.Shutdown(ctx)
	return errors.Join(gwErr, <-httpDone, <-httpDone)
}

func (s *Server) closeListeners() {
	for _, l := range append(s.listeners, s.redirects...) {
		l.Close()
	}
}

// freshConns are the connections that have not sent a whole request yet:
// idle after the TCP handshake (a browser's preconnect, a port scan, a load
// balancer's probe) or still sending their request headers. net/http's
// Shutdown waits up to five seconds for such a connection, longer than
// wsgate's whole shutdown may take, so Shutdown closes them itself, at once:
// nothing of theirs has begun.
type freshConns struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool // shutdown has begun: close new ones as they come
}

func newFreshConns() *freshConns {
	return &freshConns{conns: make(map[net.Conn]struct{})}
}

// track is the servers' ConnState hook. A connection is fresh from its
// accept until net/http has read its first request.
func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case state != http.StateNew:
		delete(f.conns, c)
	case f.closing: // accepted as the listeners were being closed
		hangUp(c)
	default:
		f.conns[c] = struct{}{}
	}
}

// closeAll hangs up every fresh connection, and from now on each new one as
// it is accepted.
func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closing = true
	for c := range f.conns {
		hangUp(c)
	}
	clear(f.conns)
}

// hangUp ends a connection that net/http is reading a request from, without
// waiting: it shuts the socket's reading side down, so that the read ends at
// once (whatever deadline net/http sets), and net/http's goroutine then
// closes the connection. Close would wait for that goroutine's read to
// return, one connection after the other: measured, 1.3 s for 300
// connections on a loaded machine, most of shutdown's bound.
func hangUp(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cr, ok := c.(interface{ CloseRead() error }); ok && cr.CloseRead() == nil {
		return
	}
	c.Close()
}
