package e2e

// End-to-end harness: TestMain builds the real wsgate binary with the race
// detector, and the helpers below run it, talk to it as a WebSocket client,
// read its logs and look for its children in /proc. The tests themselves live
// in the other files of this package, one topic each.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// wsgateBin is the path of the binary built by TestMain.
var wsgateBin string

// exitBadUsage is the status wsgate exits with when its command line is
// wrong (main.go's constant of the same name; this package cannot see it).
const exitBadUsage = 2

func TestMain(m *testing.M) {
	testrun.Main(m, &wsgateBin)
}

// gatewayProc is a running wsgate binary.
type gatewayProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr *testrun.Buffer
	addr   string // host:port it listens on

	signalledAt time.Time     // when stop last sent a signal; test goroutine only
	exited      chan struct{} // closed once the process has exited
	exitCode    int           // valid once exited is closed
	exitedAt    time.Time     // valid once exited is closed
}

// listeningLine matches the log line naming the listening address, in text
// or JSON format.
var listeningLine = regexp.MustCompile(`level=INFO msg=listening addr=(127\.0\.0\.1:\d+)|"msg":"listening","addr":"(127\.0\.0\.1:\d+)"`)

// startGateway runs wsgate --port=0 --address=127.0.0.1 args..., waits (at
// most 10 s) for the log line naming its address, and kills it at the end of
// the test if it is still running.
func startGateway(t testing.TB, args ...string) *gatewayProc {
	return startGatewayEnv(t, nil, args...)
}

// startGatewayEnv is startGateway with extra "NAME=value" environment
// variables for wsgate itself.
func startGatewayEnv(t testing.TB, env []string, args ...string) *gatewayProc {
	t.Helper()
	return startBinary(t, wsgateBin, env, args...)
}

// startPlainGateway is startGateway with a binary built without the race
// detector, for tests that measure memory.
func startPlainGateway(t testing.TB, args ...string) *gatewayProc {
	t.Helper()
	return startBinary(t, testrun.PlainBinary(t), nil, args...)
}

// startBinary runs bin as startGatewayEnv says.
func startBinary(t testing.TB, bin string, env []string, args ...string) *gatewayProc {
	t.Helper()
	g := launchBinary(t, bin, env, append([]string{"--port=0", "--address=127.0.0.1"}, args...)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(g.logs()); m != nil {
			g.addr = m[1] + m[2]
			return g
		}
		select {
		case <-g.exited:
			t.Fatalf("wsgate exited with %d before listening; stderr:\n%s", g.exitCode, g.logs())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgate did not log its address within 10 s; stderr:\n%s", g.logs())
		}
	}
}

// startGatewayOnFreePort runs wsgate on a port picked beforehand, for log
// levels that hide the listening line, and waits (at most 10 s) until the
// port accepts connections on wsgate's own socket. A port that another
// process took meanwhile is given up for another, twice at most.
func startGatewayOnFreePort(t testing.TB, args ...string) *gatewayProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		g, err := tryFreePort(t, args)
		if err == nil {
			return g
		}
		if attempt == 3 || !strings.Contains(g.logs(), "address already in use") {
			t.Fatalf("%v; stderr:\n%s", err, g.logs())
		}
	}
}

// tryFreePort is one attempt of startGatewayOnFreePort.
func tryFreePort(t testing.TB, args []string) (*gatewayProc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	g := launch(t, nil, append([]string{"--port=" + port, "--address=127.0.0.1"}, args...)...)
	g.addr = addr
	portNum, _ := strconv.Atoi(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			if testrun.ListensOn(g.pid(), portNum) { // not another process that took the port
				return g, nil
			}
		}
		select {
		case <-g.exited:
			return g, fmt.Errorf("wsgate exited with %d before listening", g.exitCode)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return g, fmt.Errorf("wsgate did not accept connections on %s within 10 s", addr)
		}
	}
}

// launch starts the binary with args and registers its cleanup: SIGKILL if
// still running, a check of its stderr for data races and panics, and its
// stderr in the test log when the test failed.
func launch(t testing.TB, env []string, args ...string) *gatewayProc {
	t.Helper()
	return launchBinary(t, wsgateBin, env, args...)
}

// launchBinary is launch with another binary.
func launchBinary(t testing.TB, bin string, env []string, args ...string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{t: t, stderr: &testrun.Buffer{}, exited: make(chan struct{})}
	g.cmd = exec.Command(bin, args...)
	g.cmd.Env = append(cleanEnv(), env...)
	g.cmd.Stderr = g.stderr
	g.cmd.WaitDelay = 2 * time.Second // a child that kept our stderr cannot hold Wait
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = g.cmd.Wait()
		g.exitCode, g.exitedAt = g.cmd.ProcessState.ExitCode(), time.Now()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			_ = g.cmd.Process.Kill()
			select {
			case <-g.exited:
			case <-time.After(10 * time.Second):
				t.Errorf("wsgate pid %d did not die of SIGKILL", g.pid())
			}
		}
		logs := g.logs()
		if strings.Contains(logs, "WARNING: DATA RACE") || goPanic.MatchString(logs) {
			t.Errorf("wsgate reported a data race or panic:\n%s", logs)
		} else if t.Failed() {
			t.Logf("wsgate stderr:\n%s", logs)
		}
	})
	return g
}

// goPanic matches a Go panic on wsgate's stderr; a child's "panic:" would be
// inside a log line, not at the start of one.
var goPanic = regexp.MustCompile(`(?m)^(panic|fatal error): `)

// cleanEnv is the test's environment without any WSGATE_ variable, so that
// the caller's shell cannot change what a test runs. The race runtime's
// default 1 s sleep at a clean exit is shortened, so that shutdown times
// measure wsgate rather than the race detector.
func cleanEnv() []string {
	env := []string{"GORACE=atexit_sleep_ms=50"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WSGATE_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return env
}

// pid is the gateway's process id.
func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

// logs returns everything wsgate wrote to stderr so far.
func (g *gatewayProc) logs() string { return g.stderr.String() }

// url returns the ws:// URL of path on the gateway.
func (g *gatewayProc) url(path string) string { return "ws://" + g.addr + path }

// stop sends sig to the gateway and notes when, for wait.
func (g *gatewayProc) stop(sig syscall.Signal) {
	g.t.Helper()
	g.signalledAt = time.Now()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits at most timeout for the gateway to exit and returns its exit
// code (-1 if killed by a signal) and the time from the last stop to the
// exit. The test fails if it does not exit in time.
func (g *gatewayProc) wait(timeout time.Duration) (exitCode int, elapsed time.Duration) {
	g.t.Helper()
	select {
	case <-g.exited:
	case <-time.After(timeout):
		g.t.Fatalf("wsgate did not exit within %v; stderr:\n%s", timeout, g.logs())
	}
	return g.exitCode, g.exitedAt.Sub(g.signalledAt)
}

// waitLog waits at most timeout for a text-format log line with the given
// msg for which match (nil: any) holds, and returns its fields.
func (g *gatewayProc) waitLog(timeout time.Duration, msg string, match func(map[string]string) bool) map[string]string {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, f := range logLines(g.logs(), msg) {
			if match == nil || match(f) {
				return f
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no log line msg=%q as expected within %v; stderr:\n%s", msg, timeout, g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logsSay reports whether the log holds text, waiting for it up to
// within: a line about what a client was just told may be written a moment
// after the client got it.
func (g *gatewayProc) logsSay(text string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(g.logs(), text) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// logLines returns the fields of each text-format line of logs with the
// given msg.
func logLines(logs, msg string) []map[string]string {
	var found []map[string]string
	for _, line := range strings.Split(logs, "\n") {
		if f := parseLogLine(line); f["msg"] == msg {
			found = append(found, f)
		}
	}
	return found
}

// parseLogLine splits one slog text line into its key=value fields, values
// unquoted.
func parseLogLine(line string) map[string]string {
	fields := map[string]string{}
	for {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			return fields
		}
		key, rest := line[:eq], line[eq+1:]
		if strings.HasPrefix(rest, `"`) {
			quoted, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return fields
			}
			fields[key], _ = strconv.Unquote(quoted)
			line = rest[len(quoted):]
			continue
		}
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		fields[key], line = rest[:end], rest[end:]
	}
}

// jsonLogLines decodes every non-empty line of logs as a JSON object,
// failing the test on any line that is not one.
func jsonLogLines(t testing.TB, logs string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("log line is not a JSON object (%v): %q", err, line)
		}
		objs = append(objs, obj)
	}
	return objs
}

// dial opens a WebSocket connection to url (at most 5 s), closed at the end
// of the test.
func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

// send writes text messages, failing the test on error.
func send(t testing.TB, conn *websocket.Conn, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatalf("send %q: %v", m, err)
		}
	}
}

// receive reads one text message (at most 5 s), failing the test on anything
// else.
func receive(t testing.TB, conn *websocket.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("receive: message type %d, want text", typ)
	}
	return string(data)
}

// readUntilClose reads messages until the close frame or timeout. It returns
// the messages and the close frame, or the error that ended reading instead.
// It does not touch the test, so it may run on any goroutine.
func readUntilClose(conn *websocket.Conn, timeout time.Duration) ([]string, *websocket.CloseError, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	var msgs []string
	for {
		_, data, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return msgs, ce, nil
		}
		if err != nil {
			return msgs, nil, err
		}
		msgs = append(msgs, string(data))
	}
}

// expectClose reads until the close frame (at most 5 s), checks its code and
// reason, and returns the messages before it.
func expectClose(t testing.TB, conn *websocket.Conn, code int, reason string) []string {
	t.Helper()
	msgs, ce, err := readUntilClose(conn, 5*time.Second)
	if err != nil {
		t.Fatalf("no close frame (got %q first): %v", msgs, err)
	}
	if ce.Code != code || ce.Text != reason {
		t.Fatalf("close %d %q, want %d %q (messages %q)", ce.Code, ce.Text, code, reason, msgs)
	}
	return msgs
}

// closeFromClient sends a close frame with code and reason and reads until the
// server answers it (at most 5 s), returning the code it answered with.
func closeFromClient(t testing.TB, conn *websocket.Conn, code int, reason string) int {
	t.Helper()
	msg := websocket.FormatCloseMessage(code, reason)
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("send close: %v", err)
	}
	msgs, ce, err := readUntilClose(conn, 5*time.Second)
	if err != nil {
		t.Fatalf("close not answered (got %q first): %v", msgs, err)
	}
	return ce.Code
}

// writeScript writes an executable sh script with body into a temporary
// directory and returns its path.
func writeScript(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "child.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// readPid reads the first message, which the child script sends as its $$,
// and returns it.
func readPid(t testing.TB, conn *websocket.Conn) int {
	t.Helper()
	first := receive(t, conn)
	pid, err := strconv.Atoi(first)
	if err != nil || pid <= 1 {
		t.Fatalf("first message %q is not a pid", first)
	}
	return pid
}

// childrenOf returns the pids of the processes whose parent is ppid.
func childrenOf(ppid int) []int {
	var pids []int
	for _, p := range testrun.Processes() {
		if p.PPid == ppid {
			pids = append(pids, p.Pid)
		}
	}
	return pids
}

// waitGroupGone waits at most timeout until process group pgid is empty.
var waitGroupGone = testrun.WaitGroupGone

// runCLI runs the binary to completion (at most 10 s) with extra environment
// variables and returns its stdout, stderr and exit code.
func runCLI(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wsgateBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run wsgate %q: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("wsgate %q still running after 10 s; stderr:\n%s", args, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// requireTool returns the path of a program the test needs. Missing, it
// fails the test under CI (.ci/run installs it) and skips it elsewhere.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: .ci/run installs it", name)
	}
	t.Skipf("%s not found (apt-get install the package that has it; under CI=true this fails)", name)
	return ""
}

// substitute replaces each old with its new in text, where old must appear
// exactly once: the example and the test cannot drift apart unnoticed.
func substitute(t *testing.T, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if n := strings.Count(text, pairs[i]); n != 1 {
			t.Fatalf("the example has %q %d times, want once: update the example or the test", pairs[i], n)
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

// mainVersion returns the version main.go gives the binary when the build
// sets none: the value of its package-level version variable, which this
// package cannot see, read from the source.
func mainVersion(t testing.TB) string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "main.go"), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.VAR {
			continue
		}
		for _, spec := range gen.Specs {
			value := spec.(*ast.ValueSpec)
			for i, name := range value.Names {
				if name.Name != "version" || i >= len(value.Values) {
					continue
				}
				if lit, ok := value.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					version, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					return version
				}
			}
		}
	}
	t.Fatal("main.go declares no version variable set to a string")
	return ""
}

// readExample reads a file of examples/.
func readExample(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// writeFile writes content to path, failing the test on error.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
