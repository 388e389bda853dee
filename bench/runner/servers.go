package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// readyTimeout bounds how long a server may take to accept TCP connections.
	readyTimeout = 10 * time.Second
	// readyPoll is the pause between connection attempts while waiting.
	readyPoll = 20 * time.Millisecond
	// termGrace is how long a server gets after SIGTERM before SIGKILL; wsgate's
	// own shutdown takes about 2 s, so this leaves it room.
	termGrace = 5 * time.Second
	// maxFrameSize is passed to servers that take --maxframesize: twice the
	// largest message the big scenario sends.
	maxFrameSize = 32 << 20
	// logTail is how much of a server's stderr is kept for error messages.
	logTail = 8 << 10
	// outputWaitDelay bounds how long reaping a server may wait for its
	// output pipe to close: a child it left behind can hold the pipe open.
	outputWaitDelay = 2 * time.Second
)

// serverKind describes one of the compared gateways and how to start it.
type serverKind struct {
	name string
	path string
	// frameFlag says whether the server accepts --maxframesize
	// (websocketd 0.4.1 does not; it sets no read limit at all).
	frameFlag bool
	// broadcastFlag says whether the server has a broadcast mode, with
	// --broadcast (websocketd has none).
	broadcastFlag bool
	// broadcastOnly says the server runs the fan-out scenarios alone: the
	// bound has nothing but a broadcast mode.
	broadcastOnly bool
	// direct asks the floor's binary for the bound (--direct): every line
	// written to every socket by its hub, one write(2) each.
	direct bool
}

// args builds a websocketd-style command line for the kind. Logging is kept
// to errors so that access logs do not cost time, and forks are unlimited
// because the scale scenario opens thousands of connections. In broadcast
// mode every server keeps its default queue per client (1024 messages).
func (k serverKind) args(port int, broadcast bool, command []string) []string {
	a := []string{
		"--port=" + strconv.Itoa(port),
		"--address=127.0.0.1",
		"--loglevel=error",
		"--maxforks=0",
	}
	if k.frameFlag {
		a = append(a, "--maxframesize="+strconv.Itoa(maxFrameSize))
	}
	if broadcast {
		a = append(a, "--broadcast")
	}
	if k.direct {
		a = append(a, "--direct")
	}
	return append(a, command...)
}

// server is one running gateway process.
type server struct {
	kind    serverKind
	url     string
	cmd     *exec.Cmd
	header  http.Header // sent with every handshake of runSpawn and runEcho: credentials
	log     *tailBuffer
	done    chan struct{} // closed once cmd.Wait has returned
	waitErr error         // valid after done is closed
}

// startServer starts kind on a free loopback port with command as the
// program to run per connection (with broadcast, once for all connections),
// and waits until it accepts connections.
func startServer(ctx context.Context, kind serverKind, broadcast bool, command []string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{
		kind: kind,
		url:  fmt.Sprintf("ws://127.0.0.1:%d/", port),
		log:  &tailBuffer{max: logTail},
		done: make(chan struct{}),
	}
	s.cmd = exec.Command(kind.path, kind.args(port, broadcast, command)...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.WaitDelay = outputWaitDelay
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", kind.name, err)
	}
	go s.wait()
	if err := s.waitReady(ctx, port); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// wait reaps the server process; it is the only caller of cmd.Wait.
func (s *server) wait() {
	s.waitErr = s.cmd.Wait()
	close(s.done)
}

// dial opens a WebSocket to the server, with its handshake headers.
func (s *server) dial(ctx context.Context) (*websocket.Conn, error) {
	return dialHeader(ctx, dialer, s.url, s.header)
}

// pid is the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// freePort asks the kernel for an unused loopback port. The listener is
// closed before the server binds it; on an otherwise idle machine nothing
// else grabs the port in between.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls with TCP connects until the server accepts one, the
// server exits, or readyTimeout passes.
func (s *server) waitReady(ctx context.Context, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited at start-up (%v): %s", s.kind.name, s.waitErr, s.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(readyPoll):
		}
	}
	return fmt.Errorf("%s not accepting on %s after %v: %s", s.kind.name, addr, readyTimeout, s.log)
}

// stop sends SIGTERM, then SIGKILL after termGrace, waits for the server,
// and kills whatever it left running so that the next scenario starts clean.
// Leftovers are listed while the server still lives: once it is gone they
// belong to init and can no longer be told apart.
// It is called once per server, after the scenario's checks are done.
func (s *server) stop() {
	left, _ := descendants(s.pid())
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(termGrace):
		more, _ := descendants(s.pid())
		left = append(left, more...)
		s.cmd.Process.Kill()
	}
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGKILL) // ESRCH for the ones already gone
	}
	<-s.done // bounded: the process is dead and WaitDelay caps the pipe wait
}

// exitedEarly reports an error if the server is no longer running, so that a
// crash during a scenario is named as such rather than as a client error.
func (s *server) exitedEarly() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited during the scenario (%v): %s", s.kind.name, s.waitErr, s.log)
	default:
		return nil
	}
}

// tailBuffer is an io.Writer that keeps the last max bytes written to it.
// Server output goes here so a failure can quote it without unbounded memory.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write appends p, dropping the oldest bytes beyond max. It never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLine returns the last non-empty line of the kept output, or "".
func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := bytes.TrimRight(t.buf, "\n")
	if i := bytes.LastIndexByte(rest, '\n'); i >= 0 {
		rest = rest[i+1:]
	}
	return string(rest)
}

// String returns the kept output, or a note that there was none.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return "(no server output)"
	}
	return "server output: " + string(t.buf)
}

// checkExecutable fails early, with the flag to fix, when a server binary is missing.
func checkExecutable(kind serverKind) error {
	if kind.path == "" {
		return fmt.Errorf("no binary for %s: pass --%s=PATH", kind.name, kind.name)
	}
	info, err := os.Stat(kind.path)
	if err != nil {
		return fmt.Errorf("%s binary: %w", kind.name, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return errors.New(kind.path + " is not an executable file")
	}
	return nil
}
