package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of the plain HTTP side.
const (
	// readHeaderTimeout bounds how long request headers may take to arrive,
	// so that a slow client cannot hold a connection open without a request.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout bounds a kept-alive HTTP connection between requests.
	idleTimeout = 60 * time.Second
)

// Server serves a Gateway on one or more listeners.
type Server struct {
	gw        *Gateway
	http      *http.Server
	listeners []net.Listener
	log       *slog.Logger
}

// Listen opens a TCP listener on each address for gw. On error, the ones
// already open are closed.
func Listen(addrs []string, gw *Gateway, logger *slog.Logger) (*Server, error) {
	s := &Server{
		gw:  gw,
		log: logger,
		http: &http.Server{
			Handler:           gw,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), LevelDebug),
		},
	}
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.listeners = append(s.listeners, l)
	}
	return s, nil
}

// Addrs returns the addresses listened on, with the ports chosen for port 0.
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
	errs := make(chan error, len(s.listeners))
	var wg sync.WaitGroup
	for _, l := range s.listeners {
		s.log.Info("listening", "addr", l.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.http.Serve(l)
		}()
	}
	err := <-errs
	if errors.Is(err, http.ErrServerClosed) {
		wg.Wait()
		return nil
	}
	s.http.Close() // one listener failed: stop the others too
	wg.Wait()
	return err
}

// Shutdown stops accepting, closes every session with 1001, stops every
// child, and waits for all of it, or until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Shutdown(ctx) }()
	gwErr := s.gw.Shutdown(ctx)
	httpErr := <-httpDone
	return errors.Join(gwErr, httpErr)
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
}
