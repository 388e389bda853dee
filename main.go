// Command wsgate turns any program that reads stdin and writes stdout into a
// WebSocket service: each connection starts the program, each message is a
// line of its input, each line of its output is a message.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/process"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

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

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
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
	listeners gateway.Listeners
	grace     time.Duration // gateway.Config.CloseGrace
}

// wire checks the command line, then builds the logger, the listeners'
// settings and the gateway from it. Every error it returns is a usage error.
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
	cfg, err := cli.gatewayConfig()
	if err != nil {
		return nil, err
	}
	listeners, err := cli.listeners()
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger
	cfg.LoopbackOnly = loopbackOnly(listeners)
	gw, err := gateway.New(cfg)
	if err != nil {
		return nil, inFlagTerms(err)
	}
	return &wiring{cli: cli, logger: logger, gw: gw, listeners: listeners, grace: cfg.CloseGrace}, nil
}

// serve listens and serves until a signal or a failure, returning the exit
// code.
func (w *wiring) serve() int {
	logger, gw := w.logger, w.gw
	srv, err := gateway.Listen(w.listeners, gw, logger)
	if err != nil {
		logger.Log(context.Background(), logs.LevelFatal, "cannot listen", "err", err)
		return exitFailure
	}
	logger.Info("serving", "command", w.cli.Command, "dir", w.cli.Dir, "version", version)
	reaper := process.StartReaper() // escapees of every session, reaped as they exit
	defer reaper.Stop()

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	stats := statsSignal()
	defer signal.Stop(stats)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	return w.await(srv, served, signals, stats)
}

// await waits for the server to fail or a signal to stop it, logging the
// stats line whenever SIGUSR1 asks, and returns the exit code.
func (w *wiring) await(srv *gateway.Server, served <-chan error, signals, stats <-chan os.Signal) int {
	logger, gw := w.logger, w.gw
	for {
		select {
		case err := <-served:
			logger.Log(context.Background(), logs.LevelFatal, "server failed", "err", err)
			gw.Abort()
			return exitFailure
		case <-stats:
			logger.Info("stats", "goroutines", runtime.NumGoroutine())
		case sig := <-signals:
			logger.Info("shutting down", "signal", sig.String())
			return shutdown(srv, gw, signals, w.grace, logger)
		}
	}
}

// statsEnv is the environment variable that, set to 1, makes SIGUSR1 log a
// "stats" line with the number of goroutines: a hook for tests that check
// that nothing is left running after churn (the soak test), kept apart from
// the metrics listener and out of the flags, since no operator needs it.
const statsEnv = "WSGATE_DEBUG_STATS"

// statsSignal returns a channel that receives SIGUSR1 when statsEnv asks for
// it, and else one that never receives: SIGUSR1 then keeps its default
// action.
func statsSignal() chan os.Signal {
	stats := make(chan os.Signal, 1)
	if os.Getenv(statsEnv) == "1" {
		signal.Notify(stats, syscall.SIGUSR1)
	}
	return stats
}

// shutdown stops the server gracefully; a second signal, or the stop sequence
// overrunning its bound, kills every child at once.
func shutdown(srv *gateway.Server, gw *gateway.Gateway, signals <-chan os.Signal, grace time.Duration, logger *slog.Logger) int {
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
