package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/internal/testrun"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The fork thread lives as long as the program, on purpose.
	goleak.VerifyTestMain(m, testrun.ProcessGoroutines...)
}

// syncBuffer is a buffer safe to log into while the test reads it.
type syncBuffer = testrun.Buffer

// testGateway is a real gateway on a loopback port.
type testGateway struct {
	gw   *Gateway
	srv  *httptest.Server
	logs *syncBuffer
}

// newTestGateway serves cfg on a loopback port until the test ends, and then
// checks that every session has ended.
func newTestGateway(t *testing.T, cfg Config) *testGateway {
	t.Helper()
	logged := &syncBuffer{}
	logger, err := logs.New(logged, "text", logs.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = logger
	if cfg.ServerSoftware == "" {
		cfg.ServerSoftware = "wsgate/test"
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{gw: gw, logs: logged}
	tg.srv = httptest.NewServer(tg.gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tg.gw.Shutdown(ctx); err != nil {
			t.Errorf("sessions still running at the end of the test: %v", err)
		}
		tg.srv.Close()
	})
	return tg
}

// command returns a Config running program with args, resolved on PATH.
func command(t *testing.T, program string, args ...string) Config {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Command: append([]string{path}, args...), PassEnv: []string{"PATH=" + os.Getenv("PATH")}}
}

// script returns a Config running a shell script written for the test.
func script(t *testing.T, body string) Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{Command: []string{path}, PassEnv: []string{"PATH=" + os.Getenv("PATH")}}
}

func (tg *testGateway) url(path string) string {
	return "ws" + strings.TrimPrefix(tg.srv.URL, "http") + path
}

// dial opens a client connection, closed at the end of the test.
func (tg *testGateway) dial(t *testing.T, path string, header http.Header) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(tg.url(path), header)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitForLog waits until the log holds want, or fails the test.
func (tg *testGateway) waitForLog(t *testing.T, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if logs := tg.logs.String(); strings.Contains(logs, want) {
			return logs
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("log has no %q within %v:\n%s", want, within, tg.logs.String())
	return ""
}

// readUntilClose reads messages until the connection closes, bounded.
func readUntilClose(t *testing.T, conn *websocket.Conn, within time.Duration) ([]string, *websocket.CloseError) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	var msgs []string
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return msgs, ce
			}
			t.Fatalf("read after %d messages: %v (not a close frame)", len(msgs), err)
		}
		msgs = append(msgs, string(data))
	}
}

func readMessageText(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(data)
}

func send(t *testing.T, conn *websocket.Conn, msgType int, data string) {
	t.Helper()
	if err := conn.WriteMessage(msgType, []byte(data)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func assertClose(t *testing.T, ce *websocket.CloseError, code int, reason string) {
	t.Helper()
	if ce == nil || ce.Code != code || ce.Text != reason {
		t.Errorf("close = %v, want %d %q", ce, code, reason)
	}
}

// groupMembers lists the processes of group pgid, zombies included.
func groupMembers(pgid int) []testrun.Proc { return testrun.GroupMembers(pgid) }

// waitGroupGone waits until process group pgid is empty, or fails.
var waitGroupGone = testrun.WaitGroupGone

// readPid reads the first message, a pid the script printed.
func readPid(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	text := readMessageText(t, conn)
	pid, err := strconv.Atoi(text)
	if err != nil {
		t.Fatalf("first message %q is not a pid", text)
	}
	return pid
}

func itoa(n int) string { return strconv.Itoa(n) }

func slogDiscard() *slog.Logger {
	logger, _ := logs.New(io.Discard, "text", logs.LevelError)
	return logger
}
