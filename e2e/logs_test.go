package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sessionID matches a connection id as logged: a decimal number.
var sessionID = regexp.MustCompile(`^[0-9]+$`)

// knownExchange connects to path on g, which serves cat (possibly through a
// script that execs it), sends "ab" and "cde", receives both back and closes
// with 1000 "bye". It returns the client's address and the child's pid.
func knownExchange(t *testing.T, g *gatewayProc, path string) (remote string, pid int) {
	t.Helper()
	conn := dial(t, g.url(path))
	send(t, conn, "ab", "cde")
	for _, want := range []string{"ab", "cde"} {
		if got := receive(t, conn); got != want {
			t.Fatalf("echo %q, want %q", got, want)
		}
	}
	children := childrenOf(g.pid())
	if len(children) != 1 {
		t.Fatalf("wsgate has children %v, want one", children)
	}
	if code := closeFromClient(t, conn, websocket.CloseNormalClosure, "bye"); code != websocket.CloseNormalClosure {
		t.Fatalf("close answered with %d, want 1000", code)
	}
	return conn.LocalAddr().String(), children[0]
}

// stopGracefully sends SIGTERM and expects exit 0 within 5 s, after which
// every log line has been written.
func stopGracefully(t *testing.T, g *gatewayProc) {
	t.Helper()
	g.stop(syscall.SIGTERM)
	if code, _ := g.wait(5 * time.Second); code != 0 {
		t.Fatalf("wsgate exited %d, want 0", code)
	}
}

func TestLogs_AccessLineRecordsAKnownExchange(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "cat")
	remote, pid := knownExchange(t, g, "/echo")
	f := g.waitLog(5*time.Second, "session ended", nil)
	want := map[string]string{
		"level": "ACCESS", "remote": remote, "path": "/echo", "pid": strconv.Itoa(pid),
		"exit": "exit status 0", "close_code": "1000", "close_reason": "bye",
		"msgs_in": "2", "bytes_in": "5", "msgs_out": "2", "bytes_out": "5",
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("access line %s=%q, want %q", k, f[k], v)
		}
	}
	if !sessionID.MatchString(f["id"]) {
		t.Errorf("access line id=%q, want a connection id", f["id"])
	}
	if d, err := time.ParseDuration(f["duration"]); err != nil || d <= 0 || d > 10*time.Second {
		t.Errorf("access line duration=%q, want a positive duration under 10 s", f["duration"])
	}
	stopGracefully(t, g)
	if n := len(logLines(g.logs(), "session ended")); n != 1 {
		t.Errorf("%d access lines for one connection, want 1", n)
	}
}

func TestLogs_JSONFormatGivesOneObjectPerLine(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--logformat=json", "cat")
	remote, pid := knownExchange(t, g, "/json")
	stopGracefully(t, g)

	var access []map[string]any
	for _, obj := range jsonLogLines(t, g.logs()) {
		if obj["level"] == "ACCESS" {
			access = append(access, obj)
		}
	}
	if len(access) != 1 {
		t.Fatalf("%d ACCESS objects, want 1; logs:\n%s", len(access), g.logs())
	}
	a := access[0]
	want := map[string]any{
		"msg": "session ended", "remote": remote, "path": "/json", "pid": float64(pid),
		"exit": "exit status 0", "close_code": float64(1000), "close_reason": "bye",
		"msgs_in": float64(2), "bytes_in": float64(5), "msgs_out": float64(2), "bytes_out": float64(5),
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("access object %s=%#v, want %#v", k, a[k], v)
		}
	}
	if id, _ := a["id"].(string); !sessionID.MatchString(id) {
		t.Errorf("access object id=%#v, want a connection id", a["id"])
	}
	if d, ok := a["duration_ms"].(float64); !ok || d <= 0 || d > 10000 || a["duration"] != nil {
		t.Errorf("access object duration_ms=%#v duration=%#v, want a positive number of milliseconds under 10 s and no duration",
			a["duration_ms"], a["duration"])
	}
}

func TestLogs_LevelWarnHidesAccessLineButShowsStderr(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `echo visible-on-stderr >&2; exec cat`)
	g := startGatewayOnFreePort(t, "--loglevel=warn", script)
	knownExchange(t, g, "/")
	stopGracefully(t, g)

	logs := g.logs()
	if n := len(logLines(logs, "stderr")); n != 1 {
		t.Errorf("%d stderr lines logged, want 1", n)
	}
	for _, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		if f := parseLogLine(line); f["level"] != "WARN" {
			t.Errorf("--loglevel=warn logged a %s line: %q", f["level"], line)
		}
	}
}

func TestLogs_LevelErrorHidesTheChildsStderr(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `echo hidden-on-stderr >&2; exec cat`)
	g := startGatewayOnFreePort(t, "--loglevel=error", script)
	knownExchange(t, g, "/")
	stopGracefully(t, g)
	if logs := g.logs(); logs != "" {
		t.Errorf("--loglevel=error logged %q, want nothing: a child's stderr is no error of wsgate's", logs)
	}
}

func TestLogs_TraceLevelShowsSessionStarted(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--loglevel=trace", "cat")
	conn := dial(t, g.url("/traced"))
	send(t, conn, "x")
	receive(t, conn)
	children := childrenOf(g.pid())
	if len(children) != 1 {
		t.Fatalf("wsgate has children %v, want one", children)
	}
	f := g.waitLog(5*time.Second, "session started", nil)
	want := map[string]string{
		"level": "TRACE", "remote": conn.LocalAddr().String(), "path": "/traced", "pid": strconv.Itoa(children[0]),
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("session started line %s=%q, want %q", k, f[k], v)
		}
	}
}

func TestLogs_ChildStderrIsLoggedWithConnectionIdAndPid(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `echo $$; echo "oops: disk full" >&2; exec cat`)
	g := startGateway(t, script)
	conn := dial(t, g.url("/"))
	pid := readPid(t, conn)

	f := g.waitLog(5*time.Second, "stderr", nil)
	if f["level"] != "WARN" || f["stream"] != "stderr" || f["pid"] != strconv.Itoa(pid) || f["line"] != "oops: disk full" || !sessionID.MatchString(f["id"]) {
		t.Errorf("stderr logged as %v, want level=WARN stream=stderr pid=%d line=%q and an id", f, pid, "oops: disk full")
	}
	// Stderr never reaches the client: the next message is the echo.
	send(t, conn, "next")
	if got := receive(t, conn); got != "next" {
		t.Fatalf("after the stderr line the client got %q, want %q", got, "next")
	}
	closeFromClient(t, conn, websocket.CloseNormalClosure, "")
	access := g.waitLog(5*time.Second, "session ended", nil)
	if access["id"] != f["id"] || access["pid"] != f["pid"] {
		t.Errorf("access line id=%s pid=%s, stderr line id=%s pid=%s: want the same connection",
			access["id"], access["pid"], f["id"], f["pid"])
	}
}

// Under --dir, a stderr line names the script that printed it, in both
// modes: two scripts complain, and each line is told apart by its path.
func TestLogs_ChildStderrNamesThePathOfItsScript(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"per-connection", "broadcast"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, name := range []string{"disk.sh", "net.sh"} {
				writeFile(t, filepath.Join(dir, name), "#!/bin/sh\necho \"complaint from "+name+"\" >&2\necho ready\nexec cat\n")
				if err := os.Chmod(filepath.Join(dir, name), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"--dir=" + dir}
			if mode == "broadcast" {
				args = append(args, "--broadcast")
			}
			g := startGateway(t, args...)
			for _, name := range []string{"disk.sh", "net.sh"} {
				conn := dial(t, g.url("/"+name))
				if got := receive(t, conn); got != "ready" {
					t.Fatalf("/%s said %q first, want ready", name, got)
				}
				f := g.waitLog(10*time.Second, "stderr", func(f map[string]string) bool {
					return f["line"] == "complaint from "+name
				})
				if f["path"] != "/"+name {
					t.Errorf("stderr line of /%s has path=%q: %v", name, f["path"], f)
				}
				conn.Close()
			}
		})
	}
}

// The start-up line of each listener names the URL to open, and the
// console's page when it is served; the URL works.
func TestLogs_TheListeningLineNamesTheURLToOpen(t *testing.T) {
	t.Parallel()
	for _, console := range []bool{false, true} {
		args := []string{"cat"}
		if console {
			args = []string{"--devconsole", "cat"}
		}
		g := startGateway(t, args...)
		lines := logLines(g.logs(), "listening")
		if len(lines) != 1 {
			t.Fatalf("%d listening lines, want 1:\n%s", len(lines), g.logs())
		}
		f := lines[0]
		if f["url"] != "ws://"+g.addr+"/" {
			t.Errorf("url=%q, want ws://%s/", f["url"], g.addr)
		}
		if want := "http://" + g.addr + "/"; console && f["console"] != want || !console && f["console"] != "" {
			t.Errorf("console=%q with --devconsole %v", f["console"], console)
		}
		conn := dial(t, f["url"])
		send(t, conn, "hi")
		if got := receive(t, conn); got != "hi" {
			t.Errorf("the logged URL echoed %q", got)
		}
		conn.Close()
	}
	// Under TLS, the schemes say so.
	pki := newTestPKI(t)
	g := startGateway(t, "--ssl", "--sslcert="+pki.serverCert, "--sslkey="+pki.serverKey, "--devconsole", "cat")
	f := logLines(g.logs(), "listening")[0]
	if f["url"] != "wss://"+g.addr+"/" || f["console"] != "https://"+g.addr+"/" {
		t.Errorf("under TLS: url=%q console=%q, want wss:// and https://", f["url"], f["console"])
	}
}
