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
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/logs"
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
// sessions to end after SIGTERM.
const shutdownSlack = 3 * time.Second

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
	if err == nil {
		err = cli.validate()
	}
	if err == nil {
		err = cli.resolveCommand()
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return exitBadUsage
	}
	return serve(cli, stderr)
}

func serve(cli *CLI, stderr io.Writer) int {
	logger, err := cli.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return exitBadUsage
	}
	cfg, err := cli.gatewayConfig()
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return exitBadUsage
	}
	cfg.Logger = logger
	gw, err := gateway.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", inFlagTerms(err))
		return exitBadUsage
	}
	listeners, err := cli.listeners()
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return exitBadUsage
	}
	srv, err := gateway.Listen(listeners, gw, logger)
	if err != nil {
		logger.Log(context.Background(), logs.LevelFatal, "cannot listen", "err", err)
		return exitFailure
	}
	logger.Info("serving", "command", cli.Command, "dir", cli.Dir, "version", version)

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	select {
	case err := <-served:
		logger.Log(context.Background(), logs.LevelFatal, "server failed", "err", err)
		gw.Abort()
		return exitFailure
	case sig := <-signals:
		logger.Info("shutting down", "signal", sig.String())
	}
	return shutdown(srv, gw, signals, cfg.CloseGrace, logger)
}

// shutdown stops the server gracefully; a second signal, or the stop sequence
// overrunning its bound, kills every child at once.
func shutdown(srv *gateway.Server, gw *gateway.Gateway, signals <-chan os.Signal, grace time.Duration, logger *slog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*grace+shutdownSlack)
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
