package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/wsgate/wsgate/process"
)

// Bounds of an authorization command.
const (
	// DefaultCommandTimeout is how long a command may take to answer.
	DefaultCommandTimeout = 5 * time.Second
	// maxCommandsRunning bounds the commands running at once; a request
	// that finds them all busy waits for one within its timeout.
	maxCommandsRunning = 64
	// maxCommandOutput bounds what is read of a command's stdout: a few
	// variables. What is past it is dropped, and logged.
	maxCommandOutput = 16 << 10
	// maxStderrLines bounds how many lines of a command's stderr are logged
	// per run; maxStderrLine bounds each.
	maxStderrLines = 20
	maxStderrLine  = 1024
)

// authVarName matches a variable a command may set besides REMOTE_USER.
// AUTH_TYPE is the gateway's to say.
var authVarName = regexp.MustCompile(`^AUTH_[A-Z0-9_]+$`)

// Command is a program that decides whether a request may come in. It runs
// with the request's CGI environment and HTTP_AUTHORIZATION, in a process
// group of its own, its stdin empty. Exit 0 lets the request in, and its
// stdout lines REMOTE_USER=... and AUTH_<NAME>=... join the identity; exit
// 1 gets 401, any other exit 403. One that has not exited within its
// timeout is killed, with its group, and the request gets 503. Its stderr
// is logged. Safe for concurrent use.
type Command struct {
	path    string
	timeout time.Duration
	log     *slog.Logger
	running chan struct{} // one token per command running
}

// NewCommand returns the command at path (resolved by the caller), given
// timeout to answer (DefaultCommandTimeout when 0), logging to log.
func NewCommand(path string, timeout time.Duration, log *slog.Logger) *Command {
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	return &Command{path: path, timeout: timeout, log: log.With("authcmd", path), running: make(chan struct{}, maxCommandsRunning)}
}

// Path is the command's path.
func (c *Command) Path() string { return c.path }

// Authorize runs the command with env, the request's environment, for a
// request found to be id so far. It returns id as the command left it, or
// the refusal. ctx is the request's: a client that hangs up stops it.
func (c *Command) Authorize(ctx context.Context, env []string, id Identity) (Identity, *Refusal) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	select {
	case c.running <- struct{}{}:
	case <-ctx.Done():
		return id, c.unavailable(fmt.Sprintf("%d commands already running for %v", maxCommandsRunning, c.timeout))
	}
	defer func() { <-c.running }()
	status, out, err := c.run(ctx, env)
	switch {
	case err != nil:
		c.log.Error("authorization command failed to start", "err", err)
		return id, c.unavailable("cannot start: " + err.Error())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return id, c.unavailable(fmt.Sprintf("no answer within --authtimeout=%v; killed", c.timeout))
	case ctx.Err() != nil:
		return id, c.unavailable("the client went away; killed")
	case status.Code == 1 && status.Signal == 0:
		return id, &Refusal{Status: http.StatusUnauthorized, Reason: "not authorized", Detail: c.said("exit status 1")}
	case !status.Success():
		return id, &Refusal{Status: http.StatusForbidden, Reason: "forbidden", Detail: c.said(status.String())}
	}
	return c.admitted(id, out), nil
}

// run runs the command to its end, or until ctx is done, and returns how
// it ended and its stdout.
func (c *Command) run(ctx context.Context, env []string) (process.Status, []byte, error) {
	p, err := process.Start(process.Spec{Path: c.path, Env: env})
	if err != nil {
		return process.Status{}, nil, err
	}
	p.Stdin().Close() // it reads nothing: its input is its environment
	stop := context.AfterFunc(ctx, p.Kill)
	defer stop()
	out := &boundedBuffer{max: maxCommandOutput}
	errs := &stderrLogger{log: c.log}
	status := p.Feed(out, errs)
	if out.dropped > 0 {
		c.log.Warn("authorization command wrote too much; the rest of its output is ignored", "limit", maxCommandOutput, "dropped", out.dropped)
	}
	return status, out.buf.Bytes(), nil
}

// admitted adds what the command said to id.
func (c *Command) admitted(id Identity, out []byte) Identity {
	if id.Type == "" {
		id.Type = TypeCommand
	}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\r\n")
		name, value, ok := strings.Cut(line, "=")
		switch {
		case line == "":
		case ok && name == "REMOTE_USER":
			id.User = value
		case ok && authVarName.MatchString(name) && name != "AUTH_TYPE" && !strings.ContainsRune(value, 0):
			id.Vars = append(id.Vars, name+"="+value)
		default:
			c.log.Warn("authorization command line ignored: want REMOTE_USER=... or AUTH_<NAME>=...", "line", truncate(line, 80))
		}
	}
	return id
}

// said is the detail of a refusal, for the log.
func (c *Command) said(how string) string {
	return fmt.Sprintf("--authcmd %s said no (%s)", c.path, how)
}

// unavailable is the refusal of a command that could not answer.
func (c *Command) unavailable(why string) *Refusal {
	return &Refusal{Status: http.StatusServiceUnavailable, Reason: "authorization unavailable", Detail: "--authcmd " + c.path + ": " + why}
}

// boundedBuffer keeps the first max bytes written to it and counts the
// rest.
type boundedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	room := min(len(p), b.max-b.buf.Len())
	b.buf.Write(p[:room])
	b.dropped += len(p) - room
	return len(p), nil
}

// stderrLogger logs each line of a command's stderr, up to maxStderrLines
// lines of maxStderrLine bytes.
type stderrLogger struct {
	log     *slog.Logger
	partial []byte
	lines   int
}

func (w *stderrLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := max(0, maxStderrLine-len(w.partial))
			w.partial = append(w.partial, p[:min(room, len(p))]...)
			break
		}
		room := max(0, maxStderrLine-len(w.partial))
		w.partial = append(w.partial, p[:min(room, i)]...)
		w.line()
		p = p[i+1:]
	}
	return n, nil
}

// Close logs a last line without a newline; Feed calls it at the end of
// stderr.
func (w *stderrLogger) Close() error {
	if len(w.partial) > 0 {
		w.line()
	}
	return nil
}

func (w *stderrLogger) line() {
	w.lines++
	switch {
	case w.lines <= maxStderrLines:
		w.log.Info("authorization command stderr", "line", string(w.partial))
	case w.lines == maxStderrLines+1:
		w.log.Info("authorization command stderr: more lines not logged", "limit", maxStderrLines)
	}
	w.partial = w.partial[:0]
}
