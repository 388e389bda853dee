package gateway

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
}

// Server serves a Gateway on its listeners.
type Server struct {
	gw        *Gateway
	main      *http.Server
	redirect  *http.Server
	listeners []net.Listener // main listeners
	redirects []net.Listener
	log       *slog.Logger
}

// Listen opens every listener of ls for gw. On error, the ones already open
// are closed.
func Listen(ls Listeners, gw *Gateway, logger *slog.Logger) (*Server, error) {
	s := &Server{
		gw:   gw,
		log:  logger,
		main: newHTTPServer(gw, logger),
	}
	if err := s.open(ls); err != nil {
		s.closeListeners()
		return nil, err
	}
	if len(s.redirects) > 0 {
		s.redirect = newHTTPServer(redirectHandler(ls.RedirectPort, ls.TLS != nil), logger)
	}
	return s, nil
}

func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
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
		host, _ := splitHostPort(r.Host)
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

// Serve accepts connections on every listener until Shutdown. It returns nil
// after Shutdown, or the first listener's error.
func (s *Server) Serve() error {
	errs := make(chan error, len(s.listeners)+len(s.redirects))
	var wg sync.WaitGroup
	serve := func(srv *http.Server, l net.Listener, what string) {
		s.log.Info(what, "addr", l.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- srv.Serve(l)
		}()
	}
	for _, l := range s.listeners {
		serve(s.main, l, "listening")
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

// Shutdown stops accepting, closes every session with 1001, stops every
// child, and waits for all of it, or until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
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
