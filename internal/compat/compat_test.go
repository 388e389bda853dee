// Package compat runs wsgate and Debian's websocketd 0.4.1 side by side: the
// same flags, the same scripts, the same client. Where wsgate is a drop-in
// replacement the two must behave alike; where it deliberately differs, the
// test asserts each server's own behaviour, and checks that the README's
// "Differences from websocketd" table lists exactly the differences tested
// here.
package compat

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
	"golang.org/x/crypto/bcrypt"
)

// websocketdPath is where Debian installs websocketd.
const websocketdPath = "/usr/bin/websocketd"

// Bounds of every wait in this package.
const (
	// startTimeout bounds a server's start, until its port accepts.
	startTimeout = 10 * time.Second
	// stopTimeout bounds a server's exit after a signal.
	stopTimeout = 5 * time.Second
	// readTimeout bounds reading a connection that is expected to end.
	readTimeout = 5 * time.Second
	// quietTimeout is how long a connection is watched when nothing is
	// expected to come (websocketd's hang, its missing pings).
	quietTimeout = 2 * time.Second
)

// wsgateBin is the wsgate binary TestMain built with the race detector.
var wsgateBin string

func TestMain(m *testing.M) {
	testrun.Main(m, &wsgateBin)
}

// impl is one implementation under test.
type impl struct {
	name string // "wsgate" or "websocketd"
	bin  string
}

// isWsgate reports whether i is wsgate, whose documented behaviour the
// differences tests assert.
func (i impl) isWsgate() bool { return i.name == "wsgate" }

// bothImpls returns wsgate and websocketd, in that order. Without websocketd
// the test fails under CI (CI=true) and is skipped elsewhere.
func bothImpls(t *testing.T) []impl {
	t.Helper()
	if _, err := os.Stat(websocketdPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: CI must install it (apt-get install websocketd)", websocketdPath)
		}
		t.Skipf("%s is missing: apt-get install websocketd", websocketdPath)
	}
	return []impl{{"wsgate", wsgateBin}, {"websocketd", websocketdPath}}
}

// server is one running wsgate or websocketd.
type server struct {
	impl
	addr string // 127.0.0.1:port
	port string
	cmd  *exec.Cmd
	out  *testrun.Buffer  // stdout and stderr (websocketd logs to stdout)
	done chan struct{}    // closed when the process has exited
	ps   *os.ProcessState // valid once done is closed
}

// startServer runs "<bin> --port=P --address=127.0.0.1 args..." on a free
// port, waits (at most startTimeout) until the port accepts connections, and
// stops the server and every process left in its process group at the end of
// the test. A port taken between picking and binding is retried.
func startServer(t *testing.T, im impl, args ...string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := tryStart(t, im, args)
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(s.out.String(), "address already in use") {
			t.Fatalf("%s did not start: %v; output:\n%s", im.name, err, s.out.String())
		}
	}
}

// tryStart is one attempt of startServer.
func tryStart(t *testing.T, im impl, args []string) (*server, error) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{impl: im, addr: "127.0.0.1:" + port, port: port, out: &testrun.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(im.bin, append([]string{"--port=" + port, "--address=127.0.0.1"}, args...)...)
	s.cmd.Env = serverEnv(im)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // websocketd's children stay in this group
	s.cmd.WaitDelay = 2 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		s.ps = s.cmd.ProcessState
		close(s.done)
	}()
	t.Cleanup(func() { s.cleanup(t) })
	return s, s.waitAccepting()
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// serverEnv is the test's environment without WSGATE_ variables, which
// would change wsgate's flags, and with two variables for --passenv to pass
// or not. The race detector's one-second pause at exit is turned off for
// wsgate, so that stopping it takes no longer than it does.
func serverEnv(im impl) []string {
	var env []string
	gorace := "atexit_sleep_ms=0"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "WSGATE_"):
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
		case strings.HasPrefix(kv, "COMPAT_"):
		default:
			env = append(env, kv)
		}
	}
	env = append(env, "COMPAT_PASSED=yes", "COMPAT_HIDDEN=no") // for --passenv
	if im.isWsgate() {
		env = append(env, "GORACE="+gorace)
	}
	return env
}

// waitAccepting waits until the server's port accepts a TCP connection and
// the listening socket is the server's own (another process may have taken
// the port between freePort and the server's bind), the server exits, or
// startTimeout passes.
func (s *server) waitAccepting() error {
	deadline := time.Now().Add(startTimeout)
	port, _ := strconv.Atoi(s.port)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			if testrun.ListensOn(s.cmd.Process.Pid, port) {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited (%v) before accepting on %s", s.ps, s.addr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting on %s after %v", s.addr, startTimeout)
		}
	}
}

// cleanup stops the server (SIGTERM, then SIGKILL), kills whatever is left in
// its process group, and reports data races and panics in wsgate's output.
func (s *server) cleanup(t *testing.T) {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done // bounded: SIGKILL, then WaitDelay
		}
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // websocketd's orphans
	out := s.out.String()
	if s.isWsgate() && (strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:")) {
		t.Errorf("wsgate reported a data race or panic:\n%s", out)
	} else if t.Failed() {
		t.Logf("%s output:\n%s", s.name, out)
	}
}

// waitExit waits at most timeout for the server to exit and returns its
// state, or nil if it is still running.
func (s *server) waitExit(timeout time.Duration) *os.ProcessState {
	select {
	case <-s.done:
		return s.ps
	case <-time.After(timeout):
		return nil
	}
}

// url returns the WebSocket URL of path (with its query) on the server.
func (s *server) url(path string) string { return "ws://" + s.addr + path }

// dialer is the client of every test: bounded handshakes, no proxy.
var dialer = websocket.Dialer{HandshakeTimeout: 5 * time.Second}

// dial opens a WebSocket to path on s with the extra header h. On a refused
// handshake it returns the HTTP status (0 when there was no response).
func dial(t *testing.T, s *server, path string, h http.Header) (*websocket.Conn, int, error) {
	t.Helper()
	conn, resp, err := dialer.Dial(s.url(path), h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil {
		return nil, status, err
	}
	t.Cleanup(func() { conn.Close() })
	return conn, status, nil
}

// mustDial is dial that fails the test unless the handshake succeeds.
func mustDial(t *testing.T, s *server, path string, h http.Header) *websocket.Conn {
	t.Helper()
	conn, status, err := dial(t, s, path, h)
	if err != nil {
		t.Fatalf("%s: handshake for %s failed (HTTP %d): %v", s.name, path, status, err)
	}
	return conn
}

// originHeader returns a header holding just Origin: origin.
func originHeader(origin string) http.Header {
	return http.Header{"Origin": {origin}}
}

// observation is what a client saw of one connection: every message, then
// how it ended.
type observation struct {
	msgs     []string // each message's payload, bytes as they came
	types    []int    // each message's type
	code     int      // the close frame's code; 1006 when none came
	reason   string   // the close frame's reason
	timedOut bool     // the connection was still open when the wait ended
	err      error    // the error that ended reading
}

// noCloseFrame reports a connection that ended without a close frame.
func (o observation) noCloseFrame() bool {
	return !o.timedOut && o.code == websocket.CloseAbnormalClosure
}

// String summarises the observation for failure messages.
func (o observation) String() string {
	return fmt.Sprintf("messages %q, close %d %q, timed out %v (%v)", o.msgs, o.code, o.reason, o.timedOut, o.err)
}

// observe reads conn until it ends or timeout passes.
func observe(conn *websocket.Conn, timeout time.Duration) observation {
	var o observation
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			o.err = err
			var ce *websocket.CloseError
			var ne net.Error
			switch {
			case errors.As(err, &ce):
				o.code, o.reason = ce.Code, ce.Text
			case errors.As(err, &ne) && ne.Timeout():
				o.timedOut = true
			default: // reset, EOF: the connection ended with no close frame
				o.code = websocket.CloseAbnormalClosure
			}
			return o
		}
		o.msgs = append(o.msgs, string(msg))
		o.types = append(o.types, typ)
	}
}

// receive reads n messages from conn, failing the test if it ends first.
func receive(t *testing.T, name string, conn *websocket.Conn, n int) []string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
	var msgs []string
	for len(msgs) < n {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("%s: after %d of %d messages: %v", name, len(msgs), n, err)
		}
		if typ != websocket.TextMessage {
			t.Fatalf("%s: message %d has type %d, want text", name, len(msgs), typ)
		}
		msgs = append(msgs, string(msg))
	}
	return msgs
}

// send writes each message as a text message.
func send(t *testing.T, name string, conn *websocket.Conn, msgs ...string) {
	t.Helper()
	_ = conn.SetWriteDeadline(time.Now().Add(readTimeout))
	for _, m := range msgs {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatalf("%s: sending %q: %v", name, m, err)
		}
	}
}

// closeConn sends a normal close frame and closes conn.
func closeConn(conn *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	conn.Close()
}

// writeScript writes an executable /bin/sh script with body into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// script writes an executable script with body into a fresh temp dir.
func script(t *testing.T, body string) string {
	t.Helper()
	return writeScript(t, t.TempDir(), "script.sh", body)
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// waitGone waits at most timeout for pid to end and reports whether it did.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// killLater kills pid at the end of the test, for a process that a server
// leaves behind.
func killLater(t *testing.T, pid int) {
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
}

// readPid reads one message holding a pid.
func readPid(t *testing.T, name string, conn *websocket.Conn) int {
	t.Helper()
	msg := receive(t, name, conn, 1)[0]
	pid, err := strconv.Atoi(msg)
	if err != nil || pid <= 1 {
		t.Fatalf("%s: want a pid, got %q", name, msg)
	}
	return pid
}

// sameForBoth fails the test unless every implementation got the same value.
func sameForBoth[T any](t *testing.T, what string, got map[string]T) {
	t.Helper()
	if !reflect.DeepEqual(got["wsgate"], got["websocketd"]) {
		t.Errorf("%s differ:\n  wsgate:     %#v\n  websocketd: %#v", what, got["wsgate"], got["websocketd"])
	}
}

// TestCompat runs every scenario, each against its own pair of servers.
func TestCompat(t *testing.T) {
	t.Parallel()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t)
		})
	}
}

// scenario is one side-by-side test.
type scenario struct {
	name string
	run  func(t *testing.T)
}

// scenarios are run by TestCompat; the names are those readmeTopics refers to.
var scenarios = []scenario{
	{"same/line-echo", testLineEcho},
	{"same/fixed-sequence", testFixedSequence},
	{"same/cat-100", testCat100},
	{"same/environment", testEnvironment},
	{"same/dir-routing", testDirRouting},
	{"same/refusals/maxforks", testMaxForks},
	{"same/refusals/origin-list", testOriginList},
	{"same/refusals/sameorigin", testSameOrigin},
	{"same/refusals/plain-get", testPlainGet},
	{"same/binary", testBinary},
	{"differs/program-exits", testProgramExits},
	{"differs/stopping-a-program", testStoppingAProgram},
	{"differs/shutdown", testShutdown},
	{"differs/invalid-utf8", testInvalidUTF8},
	{"differs/stderr-long-line", testStderrLongLine},
	{"differs/last-line-without-newline", testLastLine},
	{"differs/pings", testPings},
	{"differs/origin-policy", testOriginPolicy},
	{"differs/symlink-out-of-dir", testSymlinkOut},
	{"differs/non-executable-in-dir", testNonExecutable},
	{"differs/dns-rebinding", testDNSRebinding},
	{"differs/control-characters-in-path", testControlCharactersInPath},
	{"differs/authentication", testAuthentication},
	{"differs/slots-per-address", testSlotsPerAddress},
}

// testLineEcho: a script echoing each line gives back the same messages.
func testLineEcho(t *testing.T) {
	echo := script(t, "while IFS= read -r line; do printf '%s\\n' \"$line\"; done\n")
	sent := []string{"hello", "", "two  spaces", "tab\there", "ünïcödé ✓", "last"}
	got := map[string][]string{}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, echo)
		conn := mustDial(t, s, "/", nil)
		send(t, im.name, conn, sent...)
		got[im.name] = receive(t, im.name, conn, len(sent))
		closeConn(conn)
	}
	sameForBoth(t, "echoed messages", got)
	if !slices.Equal(got["wsgate"], sent) {
		t.Errorf("wsgate echoed %q, want %q", got["wsgate"], sent)
	}
}

// testFixedSequence: a fixed output with empty lines and \r\n endings gives
// the same messages, empty ones included and without the \r.
func testFixedSequence(t *testing.T) {
	seq := script(t, "printf 'one\\n\\ntwo\\r\\nthree\\n\\r\\n\\n end \\n'\n")
	want := []string{"one", "", "two", "three", "", "", " end "}
	got := map[string]observation{}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, seq)
		o := observe(mustDial(t, s, "/", nil), readTimeout)
		if o.timedOut {
			t.Fatalf("%s: connection still open after %v: %v", im.name, readTimeout, o)
		}
		got[im.name] = observation{msgs: o.msgs, types: o.types}
	}
	sameForBoth(t, "messages", got)
	if !slices.Equal(got["wsgate"].msgs, want) {
		t.Errorf("wsgate sent %q, want %q", got["wsgate"].msgs, want)
	}
}

// testCat100: /bin/cat echoes 100 messages in order, and a message holding
// "\n" comes back as two lines on both.
func testCat100(t *testing.T) {
	var sent []string
	for i := range 100 {
		sent = append(sent, fmt.Sprintf("message %03d %s", i, strings.Repeat("x", i)))
	}
	got := map[string][]string{}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "/bin/cat")
		conn := mustDial(t, s, "/", nil)
		send(t, im.name, conn, sent...)
		send(t, im.name, conn, "first\nsecond")
		got[im.name] = receive(t, im.name, conn, len(sent)+2)
		closeConn(conn)
	}
	sameForBoth(t, "messages echoed by cat", got)
	if want := append(slices.Clone(sent), "first", "second"); !slices.Equal(got["wsgate"], want) {
		t.Errorf("wsgate echoed %q, want %q", got["wsgate"], want)
	}
}

// envCompared are the variables whose values must be the same on both.
var envCompared = []string{
	"REQUEST_METHOD", "REQUEST_URI", "SCRIPT_NAME", "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING",
	"REMOTE_ADDR", "REMOTE_HOST", "SERVER_NAME", "SERVER_PROTOCOL", "HTTP_X_CUSTOM", "HTTP_X_MULTI",
	"COMPAT_PASSED", "PATH",
}

// Documented differences in the set of variable names (README table rows
// "HTTP_PROXY from a Proxy: header" and "header names with _"), and
// wsgate's HTTP_HOST, which DESIGN.md section 4 adds and websocketd 0.4.1
// does not set (Go moves Host out of the request's headers).
var (
	websocketdOnlyEnv = []string{"HTTP_PROXY", "HTTP_X_UNDER"}
	wsgateOnlyEnv     = []string{"HTTP_HOST"}
)

// testEnvironment: /usr/bin/env as the command (no shell to add variables)
// sees the same CGI variables on both, but for the documented differences,
// and the same --passenv variables (COMPAT_HIDDEN is in both servers'
// environment but not passed).
func testEnvironment(t *testing.T) {
	header := http.Header{}
	header.Set("X-Custom", "v1")
	header["X_Under"] = []string{"u"} // an underscore: passed by websocketd, dropped by wsgate
	header.Set("Proxy", "http://proxy.invalid")
	header["X-Multi"] = []string{"a", "b"}
	envs := map[string]map[string]string{}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--passenv=PATH,COMPAT_PASSED", "/usr/bin/env")
		o := observe(mustDial(t, s, "/some/path?x=1&y=2", header), readTimeout)
		env := map[string]string{}
		for _, line := range o.msgs {
			name, value, _ := strings.Cut(line, "=")
			env[name] = value
		}
		if env["SERVER_PORT"] != s.port {
			t.Errorf("%s: SERVER_PORT=%q, want its port %s", im.name, env["SERVER_PORT"], s.port)
		}
		if im.isWsgate() && env["HTTP_HOST"] != s.addr {
			t.Errorf("wsgate: HTTP_HOST=%q, want %s", env["HTTP_HOST"], s.addr)
		}
		envs[im.name] = env
	}
	wg, wd := envs["wsgate"], envs["websocketd"]
	sameForBoth(t, "variable names (documented differences aside)", map[string][]string{
		"wsgate":     envNames(wg, wsgateOnlyEnv),
		"websocketd": envNames(wd, websocketdOnlyEnv),
	})
	for _, name := range websocketdOnlyEnv {
		if _, ok := wd[name]; !ok {
			t.Errorf("websocketd did not set %s: the documented difference is gone", name)
		}
		if v, ok := wg[name]; ok {
			t.Errorf("wsgate set %s=%q", name, v)
		}
	}
	for _, name := range envCompared {
		if wg[name] != wd[name] {
			t.Errorf("%s: wsgate %q, websocketd %q", name, wg[name], wd[name])
		}
	}
	if wg["COMPAT_PASSED"] != "yes" {
		t.Errorf("wsgate --passenv=PATH,COMPAT_PASSED: COMPAT_PASSED=%q, want yes", wg["COMPAT_PASSED"])
	}
	for name, env := range envs {
		if v, ok := env["COMPAT_HIDDEN"]; ok {
			t.Errorf("%s passed COMPAT_HIDDEN=%q, which --passenv does not list", name, v)
		}
	}
	if v, ok := wd["HTTP_HOST"]; ok && v != wg["HTTP_HOST"] {
		t.Errorf("HTTP_HOST: wsgate %q, websocketd %q", wg["HTTP_HOST"], v)
	}
	if wg["GATEWAY_INTERFACE"] != "CGI/1.1" || wd["GATEWAY_INTERFACE"] != "websocketd-CGI/0.1" {
		t.Errorf("GATEWAY_INTERFACE: wsgate %q (want CGI/1.1), websocketd %q (want websocketd-CGI/0.1)",
			wg["GATEWAY_INTERFACE"], wd["GATEWAY_INTERFACE"])
	}
	if !strings.HasPrefix(wg["SERVER_SOFTWARE"], "wsgate/") || !strings.HasPrefix(wd["SERVER_SOFTWARE"], "websocketd/") {
		t.Errorf("SERVER_SOFTWARE: wsgate %q, websocketd %q", wg["SERVER_SOFTWARE"], wd["SERVER_SOFTWARE"])
	}
}

// envNames returns the sorted names of env, less those in except.
func envNames(env map[string]string, except []string) []string {
	var names []string
	for name := range env {
		if !slices.Contains(except, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// cgiDump prints the routing variables of its request.
const cgiDump = `echo "SCRIPT_NAME=$SCRIPT_NAME"
echo "PATH_INFO=$PATH_INFO"
echo "PATH_TRANSLATED=$PATH_TRANSLATED"
echo "REQUEST_URI=$REQUEST_URI"
`

// testDirRouting: --dir maps the same paths to the same scripts with the same
// variables, and refuses the same paths.
func testDirRouting(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "www")
	writeScript(t, dir, "a.sh", cgiDump)
	writeScript(t, dir, "sub/b.sh", cgiDump)
	writeScript(t, base, "x.sh", "echo escaped\n") // what /%2e%2e/x.sh would reach
	ok := []string{"/a.sh", "/a.sh/extra/path?q=1", "/sub/b.sh"}
	notFound := []string{"/missing", "/sub", "/"}
	outputs := map[string]map[string][]string{}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--dir="+dir)
		outputs[im.name] = map[string][]string{}
		for _, path := range ok {
			o := observe(mustDial(t, s, path, nil), readTimeout)
			outputs[im.name][path] = o.msgs
		}
		for _, path := range notFound {
			if _, status, err := dial(t, s, path, nil); err == nil || status != http.StatusNotFound {
				t.Errorf("%s: %s: handshake status %d (%v), want 404", im.name, path, status, err)
			}
		}
		checkDotDot(t, s)
	}
	sameForBoth(t, "script output per path", outputs)
	want := []string{"SCRIPT_NAME=/a.sh", "PATH_INFO=/extra/path", "PATH_TRANSLATED=/a.sh/extra/path", "REQUEST_URI=/a.sh/extra/path?q=1"}
	if got := outputs["wsgate"]["/a.sh/extra/path?q=1"]; !slices.Equal(got, want) {
		t.Errorf("wsgate: /a.sh/extra/path?q=1 gave %q, want %q", got, want)
	}
}

// checkDotDot: an encoded ".." never runs a script outside --dir. wsgate
// answers 404; websocketd 0.4.1 (Go's ServeMux) answers 301 to the cleaned
// path /x.sh, inside the directory, where there is no such script.
func checkDotDot(t *testing.T, s *server) {
	t.Helper()
	conn, resp, err := dialer.Dial(s.url("/%2e%2e/x.sh"), nil)
	if err == nil {
		conn.Close()
		t.Errorf("%s: /%%2e%%2e/x.sh was upgraded", s.name)
		return
	}
	if resp == nil {
		t.Errorf("%s: /%%2e%%2e/x.sh: no response: %v", s.name, err)
		return
	}
	resp.Body.Close()
	switch {
	case s.isWsgate() && resp.StatusCode != http.StatusNotFound:
		t.Errorf("wsgate: /%%2e%%2e/x.sh: status %d, want 404", resp.StatusCode)
	case !s.isWsgate() && resp.StatusCode != http.StatusNotFound &&
		!(resp.StatusCode == http.StatusMovedPermanently && resp.Header.Get("Location") == "/x.sh"):
		t.Errorf("websocketd: /%%2e%%2e/x.sh: status %d to %q, want 404 or 301 to /x.sh",
			resp.StatusCode, resp.Header.Get("Location"))
	}
}

// longRunning prints its pid and then lives for a while; the servers' group
// cleanup ends it sooner.
const longRunning = "echo $$\nexec sleep 10\n"

// testMaxForks: over --maxforks=1 the second connection is refused by both,
// each in its documented form: websocketd fails the handshake with 429,
// wsgate completes it and closes with 1013 "too many connections".
func testMaxForks(t *testing.T) {
	long := script(t, longRunning)
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--maxforks=1", long)
		first := mustDial(t, s, "/", nil)
		killLater(t, readPid(t, im.name, first))
		conn, status, err := dial(t, s, "/", nil)
		if !im.isWsgate() {
			if err == nil || status != http.StatusTooManyRequests {
				t.Errorf("websocketd: second connection: status %d (%v), want a 429 handshake failure", status, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("wsgate: second handshake failed (HTTP %d): %v", status, err)
		}
		o := observe(conn, readTimeout)
		if len(o.msgs) != 0 || o.code != websocket.CloseTryAgainLater || o.reason != "too many connections" {
			t.Errorf("wsgate: second connection: %v; want close 1013 \"too many connections\"", o)
		}
	}
}

// testOriginList: --origin=allowed.example refuses another origin with 403
// on both and accepts the listed one.
func testOriginList(t *testing.T) {
	ok := script(t, "echo ok\n")
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--origin=allowed.example", ok)
		if _, status, err := dial(t, s, "/", originHeader("http://evil.example")); err == nil || status != http.StatusForbidden {
			t.Errorf("%s: Origin http://evil.example: status %d (%v), want 403", im.name, status, err)
		}
		conn := mustDial(t, s, "/", originHeader("http://allowed.example"))
		if got := receive(t, im.name, conn, 1); got[0] != "ok" {
			t.Errorf("%s: allowed origin got %q, want ok", im.name, got)
		}
	}
}

// testSameOrigin: --sameorigin refuses a foreign Origin with 403 on both and
// accepts the server's own.
func testSameOrigin(t *testing.T) {
	ok := script(t, "echo ok\n")
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--sameorigin", ok)
		if _, status, err := dial(t, s, "/", originHeader("http://evil.example")); err == nil || status != http.StatusForbidden {
			t.Errorf("%s: Origin http://evil.example: status %d (%v), want 403", im.name, status, err)
		}
		conn := mustDial(t, s, "/", originHeader("http://"+s.addr))
		if got := receive(t, im.name, conn, 1); got[0] != "ok" {
			t.Errorf("%s: same origin got %q, want ok", im.name, got)
		}
	}
}

// testBinary: --binary passes every byte both ways, NUL and 0xff included,
// in binary messages on both (message boundaries may differ).
func testBinary(t *testing.T) {
	payload := []byte("a\x00b\xffc\nd\r\n")
	got := map[string][]byte{}
	for _, im := range bothImpls(t) {
		conn := mustDial(t, startServer(t, im, "--binary", "/bin/cat"), "/", nil)
		_ = conn.SetWriteDeadline(time.Now().Add(readTimeout))
		if err := conn.WriteMessage(websocket.BinaryMessage, payload); err != nil {
			t.Fatalf("%s: %v", im.name, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
		var echoed []byte
		for len(echoed) < len(payload) {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("%s: after %q: %v", im.name, echoed, err)
			}
			if typ != websocket.BinaryMessage {
				t.Errorf("%s: message of type %d, want binary", im.name, typ)
			}
			echoed = append(echoed, msg...)
		}
		got[im.name] = echoed
		closeConn(conn)
	}
	sameForBoth(t, "bytes echoed in binary mode", got)
	if !bytes.Equal(got["wsgate"], payload) {
		t.Errorf("wsgate echoed %q, want %q", got["wsgate"], payload)
	}
}

// testPlainGet: a plain GET (no upgrade) without --devconsole is 404 on both.
func testPlainGet(t *testing.T) {
	ok := script(t, "echo ok\n")
	client := &http.Client{Timeout: readTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	for _, im := range bothImpls(t) {
		s := startServer(t, im, ok)
		resp, err := client.Get("http://" + s.addr + "/")
		if err != nil {
			t.Fatalf("%s: GET /: %v", im.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: GET /: status %d, want 404", im.name, resp.StatusCode)
		}
	}
}

// testProgramExits: after the output, wsgate sends 1000 "exit status 0",
// 1011 "exit status 3" or 1011 "signal: killed"; websocketd just ends the
// connection, with no close frame.
func testProgramExits(t *testing.T) {
	cases := []struct {
		name, body string
		code       int
		reason     string
	}{
		{"exit0.sh", "echo bye\n", websocket.CloseNormalClosure, "exit status 0"},
		{"exit3.sh", "echo bye\nexit 3\n", websocket.CloseInternalServerErr, "exit status 3"},
		{"killed.sh", "echo bye\nkill -KILL $$\n", websocket.CloseInternalServerErr, "signal: killed"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		writeScript(t, dir, c.name, c.body)
	}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--dir="+dir)
		for _, c := range cases {
			o := observe(mustDial(t, s, "/"+c.name, nil), readTimeout)
			if !slices.Equal(o.msgs, []string{"bye"}) {
				t.Errorf("%s: %s: messages %q, want [bye]", im.name, c.name, o.msgs)
			}
			if im.isWsgate() && (o.code != c.code || o.reason != c.reason) {
				t.Errorf("wsgate: %s: %v; want close %d %q", c.name, o, c.code, c.reason)
			}
			if !im.isWsgate() && !o.noCloseFrame() {
				t.Errorf("websocketd: %s: %v; want the connection to end with no close frame", c.name, o)
			}
		}
	}
}

// testStoppingAProgram: when the client leaves, wsgate stops the program's
// whole process group, a background grandchild included; websocketd signals
// only its direct child and the grandchild survives.
func testStoppingAProgram(t *testing.T) {
	parent := script(t, "sleep 20 </dev/null >/dev/null 2>&1 &\necho $!\nexec cat\n")
	for _, im := range bothImpls(t) {
		s := startServer(t, im, parent)
		conn := mustDial(t, s, "/", nil)
		grandchild := readPid(t, im.name, conn)
		killLater(t, grandchild)
		closeConn(conn)
		if im.isWsgate() {
			if !waitGone(grandchild, 3*time.Second) {
				t.Errorf("wsgate: grandchild %d still running 3 s after the client left", grandchild)
			}
			continue
		}
		// websocketd's whole stop sequence is over within a second.
		time.Sleep(1500 * time.Millisecond)
		if !processAlive(grandchild) {
			t.Errorf("websocketd: grandchild %d was stopped: the documented difference is gone", grandchild)
		}
	}
}

// testShutdown: on SIGTERM wsgate closes every connection with 1001 "server
// shutting down", stops every program and exits 0; websocketd dies of the
// signal, cutting the connection with no close frame and leaving the
// program running.
func testShutdown(t *testing.T) {
	long := script(t, longRunning)
	for _, im := range bothImpls(t) {
		s := startServer(t, im, long)
		conn := mustDial(t, s, "/", nil)
		child := readPid(t, im.name, conn)
		killLater(t, child)
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		o := observe(conn, readTimeout)
		ps := s.waitExit(stopTimeout)
		if ps == nil {
			t.Fatalf("%s: still running %v after SIGTERM", im.name, stopTimeout)
		}
		if im.isWsgate() {
			if o.code != websocket.CloseGoingAway || o.reason != "server shutting down" {
				t.Errorf("wsgate: %v; want close 1001 \"server shutting down\"", o)
			}
			if ps.ExitCode() != 0 {
				t.Errorf("wsgate: exit %v after SIGTERM, want 0", ps)
			}
			if !waitGone(child, time.Second) {
				t.Errorf("wsgate: program %d still running after shutdown", child)
			}
			continue
		}
		if !o.noCloseFrame() {
			t.Errorf("websocketd: %v; want the connection cut with no close frame", o)
		}
		if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("websocketd: exit %v, want death by SIGTERM", ps)
		}
		if !processAlive(child) {
			t.Errorf("websocketd: program %d was stopped: the documented difference is gone", child)
		}
	}
}

// testInvalidUTF8: output "a\377b" reaches the client as "a\uFFFDb" from
// wsgate and with the raw byte from websocketd; invalid UTF-8 sent by the
// client closes the connection with 1007 in wsgate and is echoed raw by
// websocketd's cat.
func testInvalidUTF8(t *testing.T) {
	bad := script(t, "printf 'a\\377b\\n'\n")
	for _, im := range bothImpls(t) {
		o := observe(mustDial(t, startServer(t, im, bad), "/", nil), readTimeout)
		want := "a\xffb"
		if im.isWsgate() {
			want = "a\uFFFDb"
		}
		if !slices.Equal(o.msgs, []string{want}) || o.types[0] != websocket.TextMessage {
			t.Errorf("%s: output a\\377b: %v; want one text message %q", im.name, o, want)
		}

		conn := mustDial(t, startServer(t, im, "/bin/cat"), "/", nil)
		send(t, im.name, conn, "a\xffb")
		if !im.isWsgate() {
			if got := receive(t, im.name, conn, 1); got[0] != "a\xffb" {
				t.Errorf("websocketd: client sent invalid UTF-8: got back %q, want it echoed raw", got)
			}
			continue
		}
		if o := observe(conn, readTimeout); len(o.msgs) != 0 || o.code != websocket.CloseInvalidFramePayloadData {
			t.Errorf("wsgate: client sent invalid UTF-8: %v; want close 1007", o)
		}
	}
}

// stderrFlood writes a 5000-byte line to stderr, then 100 KiB of short
// lines (more than a pipe holds), then "after" to stdout.
const stderrFlood = `head -c 5000 /dev/zero | tr '\0' x >&2
echo >&2
i=0
while [ $i -lt 1600 ]; do echo "stderr line $i: padding padding padding padding padding" >&2; i=$((i+1)); done
echo after
`

// testStderrLongLine: after a stderr line over 4 KiB websocketd stops
// reading stderr, so the program hangs once the pipe is full; wsgate keeps
// reading and the program runs to the end.
func testStderrLongLine(t *testing.T) {
	flood := script(t, stderrFlood)
	for _, im := range bothImpls(t) {
		s := startServer(t, im, flood)
		if im.isWsgate() {
			o := observe(mustDial(t, s, "/", nil), readTimeout)
			if !slices.Equal(o.msgs, []string{"after"}) || o.code != websocket.CloseNormalClosure {
				t.Errorf("wsgate: %v; want [after] and close 1000", o)
			}
			continue
		}
		o := observe(mustDial(t, s, "/", nil), quietTimeout)
		if !o.timedOut || len(o.msgs) != 0 {
			t.Errorf("websocketd: %v; want the program hung, nothing sent in %v", o, quietTimeout)
		}
	}
}

// testLastLine: a last line without a newline is delivered by wsgate and
// dropped by websocketd.
func testLastLine(t *testing.T) {
	partial := script(t, "printf 'first\\nlast'\n")
	for _, im := range bothImpls(t) {
		o := observe(mustDial(t, startServer(t, im, partial), "/", nil), readTimeout)
		want := []string{"first"}
		if im.isWsgate() {
			want = []string{"first", "last"}
		}
		if !slices.Equal(o.msgs, want) {
			t.Errorf("%s: messages %q, want %q", im.name, o.msgs, want)
		}
	}
}

// pingWatch is how long pings are counted.
const pingWatch = 2 * time.Second

// testPings: wsgate with --pingms=400 pings the client several times in
// 2 s and defaults to 30000; websocketd 0.4.1 has no --pingms and sends no
// pings. (At 100 ms, a client that a loaded machine kept from answering for
// the 200 ms of two intervals was dropped as a ping timeout, as it should
// be.)
func testPings(t *testing.T) {
	long := script(t, longRunning)
	for _, im := range bothImpls(t) {
		var flags []string
		if im.isWsgate() {
			flags = []string{"--pingms=400"}
		}
		s := startServer(t, im, append(flags, long)...)
		conn := mustDial(t, s, "/", nil)
		pings := 0
		conn.SetPingHandler(func(data string) error {
			pings++ // called only from the reading goroutine below
			return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		killLater(t, readPid(t, im.name, conn))
		o := observe(conn, pingWatch)
		if !o.timedOut {
			t.Fatalf("%s: connection ended: %v", im.name, o)
		}
		if im.isWsgate() && pings < 2 {
			t.Errorf("wsgate --pingms=400: %d pings in %v, want several", pings, pingWatch)
		}
		if !im.isWsgate() && pings != 0 {
			t.Errorf("websocketd: %d pings in %v, want none", pings, pingWatch)
		}
	}
	checkPingDefaults(t)
}

// checkPingDefaults: wsgate's help gives --pingms a default of 30000, and
// websocketd 0.4.1 rejects the flag.
func checkPingDefaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	helpCmd := exec.CommandContext(ctx, wsgateBin, "--help")
	helpCmd.Env = serverEnv(impl{"wsgate", wsgateBin})
	help, err := helpCmd.Output()
	if err != nil || !bytes.Contains(help, []byte("--pingms=30000")) {
		t.Errorf("wsgate --help does not show --pingms=30000 (%v):\n%s", err, help)
	}
	out, err := exec.CommandContext(ctx, websocketdPath, "--port=1", "--pingms=100", "/bin/cat").CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("flag provided but not defined: -pingms")) {
		t.Errorf("websocketd --pingms=100: %v, want it rejected; output:\n%.300s", err, out)
	}
}

// testOriginPolicy: with no origin flags wsgate refuses a foreign Origin
// with 403 and websocketd accepts it. With --origin, wsgate still allows
// handshakes without an Origin header and same-origin ones; websocketd
// refuses both with 403.
func testOriginPolicy(t *testing.T) {
	ok := script(t, "echo ok\n")
	for _, im := range bothImpls(t) {
		s := startServer(t, im, ok)
		_, status, err := dial(t, s, "/", originHeader("http://evil.example"))
		switch {
		case im.isWsgate() && status != http.StatusForbidden:
			t.Errorf("wsgate, no origin flag: foreign Origin: status %d (%v), want 403", status, err)
		case !im.isWsgate() && err != nil:
			t.Errorf("websocketd, no origin flag: foreign Origin refused (HTTP %d): %v", status, err)
		}

		s = startServer(t, im, "--origin=allowed.example", ok)
		for _, h := range []http.Header{nil, originHeader("http://" + s.addr)} {
			_, status, err := dial(t, s, "/", h)
			switch {
			case im.isWsgate() && err != nil:
				t.Errorf("wsgate --origin: Origin %q refused (HTTP %d): %v", h.Get("Origin"), status, err)
			case !im.isWsgate() && status != http.StatusForbidden:
				t.Errorf("websocketd --origin: Origin %q: status %d (%v), want 403", h.Get("Origin"), status, err)
			}
		}
	}
}

// testDNSRebinding: both listen on 127.0.0.1 only; a page on evil.example,
// whose name an attacker points at 127.0.0.1, sends its own name as Host
// and Origin. wsgate refuses it with 403; websocketd runs the command for it.
func testDNSRebinding(t *testing.T) {
	ok := script(t, "echo ok\n")
	for _, im := range bothImpls(t) {
		s := startServer(t, im, ok)
		host := "evil.example:" + s.port
		conn, status, err := dial(t, s, "/", http.Header{"Host": {host}, "Origin": {"http://" + host}})
		switch {
		case im.isWsgate() && status != http.StatusForbidden:
			t.Errorf("wsgate: Host %s: status %d (%v), want 403", host, status, err)
		case !im.isWsgate() && err != nil:
			t.Errorf("websocketd: Host %s refused (HTTP %d): %v", host, status, err)
		case !im.isWsgate():
			if o := observe(conn, readTimeout); !slices.Equal(o.msgs, []string{"ok"}) {
				t.Errorf("websocketd: Host %s: %v; want the command run", host, o)
			}
		}
	}
}

// testControlCharactersInPath: a path holding an encoded newline gets 400
// from wsgate; websocketd runs the command with the newline in PATH_INFO.
func testControlCharactersInPath(t *testing.T) {
	info := script(t, "printf '%s|' \"$PATH_INFO\"; echo\n")
	for _, im := range bothImpls(t) {
		s := startServer(t, im, info)
		conn, status, err := dial(t, s, "/a%0ab", nil)
		switch {
		case im.isWsgate() && status != http.StatusBadRequest:
			t.Errorf("wsgate: /a%%0ab: status %d (%v), want 400", status, err)
		case !im.isWsgate() && err != nil:
			t.Errorf("websocketd: /a%%0ab refused (HTTP %d): %v", status, err)
		case !im.isWsgate():
			if o := observe(conn, readTimeout); len(o.msgs) == 0 || !strings.Contains(strings.Join(o.msgs, "\n"), "a") {
				t.Errorf("websocketd: /a%%0ab: %v; want the command run", o)
			}
		}
	}
}

// testSymlinkOut: a symlink in --dir to a script outside it is 404 in
// wsgate and run by websocketd.
func testSymlinkOut(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "www")
	outside := writeScript(t, base, "outside.sh", "echo outside\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.sh")); err != nil {
		t.Fatal(err)
	}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--dir="+dir)
		conn, status, err := dial(t, s, "/link.sh", nil)
		if im.isWsgate() {
			if err == nil || status != http.StatusNotFound {
				t.Errorf("wsgate: /link.sh: status %d (%v), want 404", status, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("websocketd: /link.sh refused (HTTP %d): %v", status, err)
		}
		if o := observe(conn, readTimeout); !slices.Equal(o.msgs, []string{"outside"}) {
			t.Errorf("websocketd: /link.sh: %v; want it run", o)
		}
	}
}

// testNonExecutable: a file without execute permission in --dir: wsgate
// completes the handshake and closes with 1011 and a reason naming
// "permission denied"; websocketd completes it and just ends the connection.
func testNonExecutable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plain.sh"), []byte("#!/bin/sh\necho ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, im := range bothImpls(t) {
		s := startServer(t, im, "--dir="+dir)
		o := observe(mustDial(t, s, "/plain.sh", nil), readTimeout)
		if len(o.msgs) != 0 {
			t.Errorf("%s: non-executable file ran: %v", im.name, o)
		}
		if im.isWsgate() && (o.code != websocket.CloseInternalServerErr || !strings.Contains(o.reason, "permission denied")) {
			t.Errorf("wsgate: %v; want close 1011 naming permission denied", o)
		}
		if !im.isWsgate() && !o.noCloseFrame() {
			t.Errorf("websocketd: %v; want the connection to end with no close frame", o)
		}
	}
}

// readmeTopics maps each row of the README's "Differences from websocketd"
// table (its first column, normalised by topicKey) to the scenario that
// tests it. TestReadmeDifferences fails when the two disagree.
var readmeTopics = map[string]string{
	"program exits":                   "differs/program-exits",
	"stopping a program":              "differs/stopping-a-program",
	"shutdown":                        "differs/shutdown",
	"invalid utf-8 from the program":  "differs/invalid-utf8",
	"stderr line over 4 kib":          "differs/stderr-long-line",
	"last line without newline":       "differs/last-line-without-newline",
	"--pingms":                        "differs/pings",
	"over --maxforks":                 "same/refusals/maxforks",
	"gateway_interface":               "same/environment",
	"http_host":                       "same/environment",
	"http_proxy from a proxy: header": "same/environment",
	"header names with _":             "same/environment",
	"origin":                          "differs/origin-policy",
	"symlink out of --dir":            "differs/symlink-out-of-dir",
	"non-executable file in --dir":    "differs/non-executable-in-dir",
	"dns rebinding":                   "differs/dns-rebinding",
	"control characters in the path":  "differs/control-characters-in-path",
	"authentication":                  "differs/authentication",
	"one client taking every slot":    "differs/slots-per-address",
}

// TestReadmeDifferences checks that the README's table of differences and
// this test cover the same topics, so that neither can drift.
func TestReadmeDifferences(t *testing.T) {
	t.Parallel()
	rows, err := differencesTable("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, sc := range scenarios {
		names[sc.name] = true
	}
	inReadme := map[string]bool{}
	for _, row := range rows {
		key := topicKey(row)
		inReadme[key] = true
		if _, ok := readmeTopics[key]; !ok {
			t.Errorf("README difference %q has no scenario here: add one and list it in readmeTopics", row)
		}
	}
	for topic, name := range readmeTopics {
		if !names[name] {
			t.Errorf("readmeTopics[%q] names %q, which is no scenario", topic, name)
		}
		if !inReadme[topic] {
			t.Errorf("scenario %s tests a difference from websocketd (%q) that the README's table does not list", name, topic)
		}
	}
}

// differencesTable returns the first cell of each body row of the table
// under "## Differences from websocketd" in the markdown file at path: the
// table's first two lines (header and separator) are skipped.
func differencesTable(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []string
	inSection, tableLines := false, 0
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "## ") {
			if inSection {
				break
			}
			inSection = line == "## Differences from websocketd"
			continue
		}
		if !inSection {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if tableLines > 0 {
				break // the table has ended
			}
			continue
		}
		tableLines++
		if tableLines > 2 {
			first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
			rows = append(rows, strings.TrimSpace(first))
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no table rows under \"## Differences from websocketd\"", path)
	}
	return rows, nil
}

// topicKey normalises a table cell: no markdown emphasis or code marks,
// lower case, single spaces.
func topicKey(cell string) string {
	cell = strings.NewReplacer("`", "", "*", "").Replace(cell)
	return strings.ToLower(strings.Join(strings.Fields(cell), " "))
}

// testAuthentication: with --basicauth, wsgate refuses a handshake without
// credentials (401) and tells the program who the user is, never the
// credential; websocketd has no authentication and runs the program for
// anyone, AUTH_TYPE and REMOTE_USER empty.
func testAuthentication(t *testing.T) {
	who := script(t, "printf '%s|%s|%s\\n' \"$AUTH_TYPE\" \"$REMOTE_USER\" \"$HTTP_AUTHORIZATION\"\n")
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("ops:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	credentials := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("ops:secret"))}}
	for _, im := range bothImpls(t) {
		args := []string{who}
		if im.isWsgate() {
			args = []string{"--basicauth=" + htpasswd, who}
		}
		s := startServer(t, im, args...)
		conn, status, err := dial(t, s, "/", nil)
		switch {
		case im.isWsgate() && status != http.StatusUnauthorized:
			t.Errorf("wsgate: no credentials: status %d (%v), want 401", status, err)
		case !im.isWsgate() && err != nil:
			t.Errorf("websocketd: no credentials refused (HTTP %d): %v", status, err)
		case !im.isWsgate():
			if o := observe(conn, readTimeout); !slices.Equal(o.msgs, []string{"||"}) {
				t.Errorf("websocketd: %v; want the program run with no identity", o)
			}
		}
		if !im.isWsgate() {
			continue
		}
		if o := observe(mustDial(t, s, "/", credentials), readTimeout); !slices.Equal(o.msgs, []string{"Basic|ops|"}) {
			t.Errorf("wsgate with credentials: %v; want Basic|ops| and no credential", o)
		}
	}
}

// testSlotsPerAddress: with --maxconnsperip=2, wsgate closes a third
// connection from one address with 1013; websocketd serves them all.
func testSlotsPerAddress(t *testing.T) {
	cat := script(t, "exec cat\n")
	for _, im := range bothImpls(t) {
		args := []string{cat}
		if im.isWsgate() {
			args = []string{"--maxconnsperip=2", cat}
		}
		s := startServer(t, im, args...)
		mustDial(t, s, "/", nil)
		mustDial(t, s, "/", nil)
		third := mustDial(t, s, "/", nil)
		if im.isWsgate() {
			if o := observe(third, readTimeout); o.code != websocket.CloseTryAgainLater || o.reason != "too many connections from your address" {
				t.Errorf("wsgate: a third connection from one address: %v; want 1013 too many connections from your address", o)
			}
			continue
		}
		if err := third.WriteMessage(websocket.TextMessage, []byte("third")); err != nil {
			t.Fatal(err)
		}
		if o := observe(third, readTimeout); len(o.msgs) == 0 || o.msgs[0] != "third" {
			t.Errorf("websocketd: a third connection from one address: %v; want it served", o)
		}
	}
}
