// Command wsgate turns any program that reads stdin and writes stdout into a
// WebSocket service: each connection starts the program, each message is a
// line of its input, each line of its output is a message.
package main

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/httpserver"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/metrics"
	"github.com/wsgate/wsgate/process"
	"github.com/wsgate/wsgate/redisbus"
)

// version and commit are set at build time with
// -ldflags "-X main.version=... -X main.commit=...". Without commit, the
// revision Go stamps into a build from a git checkout is used.
var (
	version = "0.1.0-dev"
	commit  = ""
)

//go:embed LICENSE
var licenseText string

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // the server could not run or was forced to stop
	exitBadUsage = 2 // the command line is wrong
)

// shutdownSlack is added to the stop sequence's own bound when waiting for
// sessions to end after SIGTERM: the close handshake's bounds, a second for
// the client to take the 1001 and a second to answer it.
const shutdownSlack = 2 * time.Second

// metricsStopWait bounds how long a scrape under way may hold the exit.
const metricsStopWait = time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// versionLine is what --version prints: the version, the commit and the Go
// version wsgate was built from.
func versionLine() string {
	return fmt.Sprintf("wsgate %s (commit %s, %s %s/%s)", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildCommit is the commit wsgate was built from, or "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	revision, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case revision == "":
		return "unknown"
	case len(revision) > 12:
		revision = revision[:12]
	}
	if modified {
		revision += "-dirty"
	}
	return revision
}

// run is wsgate from the parsed command line to exit, returning the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	exitCode := -1
	cli, err := parseCLI(args, kong.Writers(stdout, stderr), kong.Exit(func(code int) {
		if exitCode < 0 { // --help and --version end here; what follows is moot
			exitCode = code
		}
	}))
	if exitCode >= 0 {
		return exitCode
	}
	if err == nil && cli.License {
		fmt.Fprint(stdout, licenseText)
		return exitOK
	}
	if err == nil && cli.Generate != "" {
		return generate(cli.Generate, stdout, stderr)
	}
	var w *wiring
	if err == nil {
		w, err = wire(cli, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return exitBadUsage
	}
	return w.serve()
}

// wiring is wsgate put together from its command line, ready to serve.
type wiring struct {
	cli       *CLI
	logger    *slog.Logger
	gw        *gateway.Gateway
	bus       *redisbus.Bus // nil without --bus
	listeners httpserver.Listeners
	grace     time.Duration // gateway.Config.CloseGrace
	cert      *certificate  // with --ssl, for reloads
	auth      auth.Methods  // who may connect; its --basicauth is reloaded
	metrics   *metrics.Metrics
	sockets   sockets // passed by systemd

	draining atomic.Bool // shutdown has begun: /healthz says 503
}

// wire checks the command line, then builds the logger, the listeners'
// settings and the gateway from it. Every error it returns is a usage error,
// but for the sockets systemd passed.
func wire(cli *CLI, stderr io.Writer) (*wiring, error) {
	if err := cli.validate(); err != nil {
		return nil, err
	}
	if err := cli.resolveCommand(); err != nil {
		return nil, err
	}
	logger, err := cli.logger(stderr)
	if err != nil {
		return nil, err
	}
	for _, warning := range envarWarnings(os.Environ(), knownEnvars()) {
		logger.Warn(warning)
	}
	cfg, err := cli.gatewayConfig()
	if err != nil {
		return nil, err
	}
	w := &wiring{cli: cli, logger: logger, grace: cfg.CloseGrace}
	if w.auth, err = cli.authMethods(logger); err != nil {
		return nil, err
	}
	cfg.Auth = w.auth
	var tlsConfig *tls.Config
	if cli.SSL {
		if tlsConfig, w.cert, err = cli.tlsConfig(); err != nil {
			return nil, err
		}
	}
	if w.sockets, err = inheritedSockets(); err != nil {
		return nil, err
	}
	w.listeners = cli.listeners(w.sockets.main)
	w.listeners.TLS = tlsConfig
	if cli.Metrics != "" || len(w.sockets.metrics) > 0 {
		w.metrics = metrics.New(metrics.Build{Version: version, Commit: buildCommit()})
		w.metrics.SetLimits(cli.limits())
		w.metrics.Endpoints(cli.endpoints(), cli.Broadcast)
		cfg.Observer = w.metrics
	}
	cfg.Logger = logger
	cfg.LoopbackOnly = loopbackOnly(w.listeners)
	if cli.Bus != "" {
		if w.bus, err = redisbus.New(redisbus.Options{URL: cli.Bus, Replay: cli.Replay, Logger: logger}); err != nil {
			w.sockets.close()
			return nil, busURLError(cli.Bus, err)
		}
		// A fault that retrying cannot mend ends the start-up; Redis not
		// answering yet only delays the ready state.
		if err := w.bus.Connect(context.Background()); err != nil {
			w.sockets.close()
			w.closeBus()
			return nil, busConnectError(cli.Bus, err)
		}
		cfg.Bus = w.bus
		if w.metrics != nil {
			w.metrics.WatchBus(w.bus)
		}
	}
	if w.gw, err = gateway.New(cfg); err != nil {
		w.sockets.close()
		w.closeBus()
		return nil, inFlagTerms(err)
	}
	w.logSettings()
	w.logAuth(w.auth)
	return w, nil
}

// busName is the bus for the logs, without its password; "" for none.
func (w *wiring) busName() string {
	if w.bus == nil {
		return ""
	}
	return redisbus.Redact(w.cli.Bus)
}

// busHealth reports whether the bus is up, and if not why; without --bus,
// it is.
func (w *wiring) busHealth() (bool, string) {
	if w.bus == nil {
		return true, ""
	}
	return w.bus.Health()
}

// health is /healthz's answer: nil while serving, else why not.
func (w *wiring) health() error {
	if w.draining.Load() {
		return errors.New("shutting down")
	}
	if up, reason := w.busHealth(); !up {
		return fmt.Errorf("bus %s unavailable: %s", w.busName(), reason)
	}
	return nil
}

// closeBus takes this instance out of every stream on the bus, once the
// gateway is done with it.
func (w *wiring) closeBus() {
	if w.bus != nil {
		_ = w.bus.Close()
	}
}

// logSettings says what wsgate makes of settings that interact.
func (w *wiring) logSettings() {
	cli := w.cli
	if len(w.sockets.main) > 0 {
		w.logger.Info("serving the sockets systemd passed; --port, --address and --unixsocket are not used", "sockets", len(w.sockets.main))
	}
	if len(w.sockets.metrics) > 0 && cli.Metrics != "" {
		w.logger.Info("serving metrics on the socket systemd passed; --metrics is not used", "metrics", cli.Metrics)
	}
	if cli.DevConsole && cli.StaticDir != "" {
		w.logger.Info("--devconsole with --staticdir: a file under --staticdir wins; the console answers the paths that name none")
	}
}

// serve listens and serves until a signal or a failure, returning the exit
// code.
func (w *wiring) serve() int {
	sig := listenForSignals()
	defer sig.stop()
	defer w.closeBus() // after the gateway has shut down
	logger, gw := w.logger, w.gw
	metricsListeners, err := w.listenMetrics()
	if err != nil {
		w.sockets.close()
		logger.Log(context.Background(), logs.LevelFatal, "cannot listen", "err", w.cli.metricsListenError(err))
		return exitFailure
	}
	srv, err := httpserver.Listen(w.listeners, gw, logger)
	if err != nil {
		closeAll(metricsListeners)
		logger.Log(context.Background(), logs.LevelFatal, "cannot listen", "err", w.cli.listenError(err))
		return exitFailure
	}
	logger.Info("serving", "command", w.cli.Command, "dir", w.cli.Dir, "bus", w.busName(), "version", version)
	reaper := process.StartReaper() // escapees of every session, reaped as they exit
	defer reaper.Stop()

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	metricsServer := w.serveMetrics(metricsListeners)
	defer metricsServer.stop()
	var bus func() (bool, string)
	if w.bus != nil {
		bus = w.busHealth
	}
	notify := newNotifier(gw, bus, logger)
	notify.ready()
	defer notify.stop()

	for {
		select {
		case err := <-served:
			logger.Log(context.Background(), logs.LevelFatal, "server failed", "err", err)
			gw.Abort()
			return exitFailure
		case s := <-sig.stopping:
			w.draining.Store(true)
			notify.stopping()
			logger.Info("shutting down", "signal", s.String())
			return shutdown(srv, gw, sig.stopping, w.grace, logger)
		case <-sig.hangup:
			notify.reloading()
			w.reload()
			notify.reloaded()
		case s := <-sig.ignored:
			switch {
			case s == syscall.SIGUSR1 && os.Getenv(statsEnv) == "1":
				logger.Info("stats", "goroutines", runtime.NumGoroutine())
			case s != syscall.SIGPIPE: // logging one could raise the next
				logger.Info("signal ignored", "signal", s.String())
			}
		}
	}
}

// statsEnv is the environment variable that, set to 1, makes SIGUSR1 log a
// "stats" line with the number of goroutines: a hook for tests that check
// that nothing is left running after churn (the soak test), kept apart from
// the metrics listener and out of the flags, since no operator needs it.
const statsEnv = "WSGATE_DEBUG_STATS"

// signals are the signals wsgate handles, each kind on its channel.
type signals struct {
	stopping chan os.Signal // SIGINT, SIGTERM: shut down; a second one forces it
	hangup   chan os.Signal // SIGHUP: reload
	ignored  chan os.Signal // SIGUSR1, SIGUSR2, SIGPIPE
}

// listenForSignals catches the signals whose default action would end
// wsgate and leave its children to run on. SIGPIPE is caught rather than
// ignored: an ignored signal stays ignored in the children, and a caught
// one makes a write to a closed stderr fail instead of killing wsgate.
func listenForSignals() signals {
	s := signals{
		stopping: make(chan os.Signal, 2),
		hangup:   make(chan os.Signal, 1),
		ignored:  make(chan os.Signal, 4),
	}
	signal.Notify(s.stopping, syscall.SIGINT, syscall.SIGTERM)
	signal.Notify(s.hangup, syscall.SIGHUP)
	signal.Notify(s.ignored, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	return s
}

// stop hands the signals back to their default actions, but SIGHUP, SIGUSR1,
// SIGUSR2 and SIGPIPE, which stay caught until the program exits.
func (s signals) stop() {
	signal.Stop(s.stopping)
}

// reload loads again what can change without dropping a connection, on
// SIGHUP, and logs what it did.
func (w *wiring) reload() {
	logger, cli := w.logger, w.cli
	logger.Info("reloading", "signal", "hangup")
	if w.cert != nil {
		notAfter, err := w.cert.reload()
		if err != nil {
			logger.Error("TLS certificate not reloaded; the one loaded before is still served", "err", err)
		} else {
			logger.Info("TLS certificate reloaded: new handshakes get it", "sslcert", cli.SSLCert, "sslkey", cli.SSLKey, "not_after", notAfter.UTC().Format(time.RFC3339))
		}
	}
	w.reloadAuth()
	if cli.Dir != "" {
		logger.Info("--dir needs no reload: each connection looks up its script when it starts", "dir", cli.Dir)
	}
	if cli.CGIDir != "" || cli.StaticDir != "" {
		logger.Info("--cgidir and --staticdir need no reload: each request looks up its file")
	}
	logger.Info("reloaded; other settings take a restart")
}

// listenMetrics opens the metrics listeners: the sockets systemd named
// "metrics", else --metrics.
func (w *wiring) listenMetrics() ([]net.Listener, error) {
	if len(w.sockets.metrics) > 0 || w.cli.Metrics == "" {
		return w.sockets.metrics, nil
	}
	l, err := net.Listen("tcp", w.cli.Metrics)
	if err != nil {
		return nil, err
	}
	return []net.Listener{l}, nil
}

func closeAll(listeners []net.Listener) {
	for _, l := range listeners {
		l.Close()
	}
}

// metricsServer serves /metrics and /healthz on its listeners; its
// goroutines are serveMetrics's caller's to stop.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
}

// serveMetrics serves the metrics on listeners, until stop.
func (w *wiring) serveMetrics(listeners []net.Listener) *metricsServer {
	m := &metricsServer{done: make(chan struct{})}
	if len(listeners) == 0 {
		close(m.done)
		return m
	}
	m.srv = &http.Server{
		Handler:           w.metrics.Handler(w.health),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(w.logger.Handler(), logs.LevelDebug),
	}
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		w.logger.Info("serving metrics", "addr", l.Addr().String())
		go func() { errs <- m.srv.Serve(l) }()
	}
	go func() {
		defer close(m.done)
		for range listeners {
			if err := <-errs; !errors.Is(err, http.ErrServerClosed) {
				w.logger.Error("metrics listener failed", "err", err)
			}
		}
	}()
	return m
}

// stop closes the listeners, lets a scrape under way finish (for a second at
// most), and waits for the goroutines.
func (m *metricsServer) stop() {
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), metricsStopWait)
		defer cancel()
		if m.srv.Shutdown(ctx) != nil {
			m.srv.Close()
		}
	}
	<-m.done
}

// shutdown stops the server gracefully; a second signal, or the stop sequence
// overrunning its bound, kills every child at once.
func shutdown(srv *httpserver.Server, gw *gateway.Gateway, signals <-chan os.Signal, grace time.Duration, logger *slog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), process.StopBound(grace)+shutdownSlack)
	defer cancel()
	go func() {
		select {
		case sig := <-signals:
			logger.Info("forced shutdown", "signal", sig.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		gw.Abort()
		logger.Error("shutdown cut short; children killed", "err", err)
		return exitFailure
	}
	logger.Info("stopped")
	return exitOK
}
