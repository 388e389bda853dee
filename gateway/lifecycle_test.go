package gateway

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/wsconn"
)

func TestExitStatusBecomesCloseCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, script string
		code         int
		reason       string
	}{
		{"exit-0", "echo bye", websocket.CloseNormalClosure, "exit status 0"},
		{"exit-3", "echo bye; exit 3", websocket.CloseInternalServerErr, "exit status 3"},
		{"killed", "echo bye; kill -KILL $$", websocket.CloseInternalServerErr, "signal: killed"},
		{"exits-at-once", "exec true", websocket.CloseNormalClosure, "exit status 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tg := newTestGateway(t, script(t, c.script))
			conn := tg.dial(t, "/", nil)
			begin := time.Now()
			_, ce := readUntilClose(t, conn, 5*time.Second)
			assertClose(t, ce, c.code, c.reason)
			// Prompt: no timer of a second or more stands between the exit
			// and the close; the rest is slack for a loaded machine.
			if took := time.Since(begin); took > 2*time.Second {
				t.Errorf("close came %v after the child ended", took)
			}
		})
	}
}

func TestCloseEndsTCPWithinASecondWhenClientIsSilent(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, "exit 0"))
	conn := tg.dial(t, "/", nil)
	// Read raw bytes so that the client never answers the close frame.
	raw := conn.UnderlyingConn()
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	begin := time.Now()
	buf := make([]byte, 512)
	for {
		if _, err := raw.Read(buf); err != nil {
			break
		}
	}
	// wsconn.CloseWait (1 s) and the watchdog's poll; the rest is slack for a
	// loaded machine, far from the write timeout's 60 s.
	if took := time.Since(begin); took > 4*time.Second {
		t.Errorf("TCP connection ended %v after the close frame, want about 1s", took)
	}
}

// A client that leaves ends its child by the stop sequence, whatever the
// child does, and nothing of its group is left afterwards.
func TestClientLeavingStopsTheWholeGroup(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, script string
		within       time.Duration
	}{
		// The stop sequence's bound (850 ms with closems 0), plus slack for a
		// loaded machine; the sleeps would last 30 s.
		{"exits-on-stdin-close", "echo $$; exec cat", 3 * time.Second},
		{"ignores-every-signal", "echo $$; trap '' INT TERM; while :; do sleep 0.05; done", 4 * time.Second},
		{"grandchildren-ignore-signals", "echo $$; (trap '' INT TERM; exec sleep 30) & (trap '' INT TERM; exec sleep 31) & wait", 4 * time.Second},
		{"never-reads-stdin", "echo $$; exec sleep 30", 4 * time.Second},
	}
	for _, c := range cases {
		for _, how := range []string{"close-frame", "drop"} {
			t.Run(c.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				tg := newTestGateway(t, script(t, c.script))
				conn := tg.dial(t, "/", nil)
				pgid := readPid(t, conn)
				time.Sleep(50 * time.Millisecond) // let traps and grandchildren start
				if how == "close-frame" {
					msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
					_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				} else {
					conn.Close()
				}
				waitGroupGone(t, pgid, c.within)
			})
		}
	}
}

// A client that resets its connection while its child is not reading stdin is
// noticed although the socket is not being read.
func TestChildThatNeverReadsStdinCannotHoldTheClient(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, "echo $$; exec sleep 30"))
	conn := tg.dial(t, "/", nil)
	pgid := readPid(t, conn)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		chunk := strings.Repeat("s", 64<<10)
		for range 64 { // 4 MiB: far more than the pipe and socket buffers hold
			if conn.WriteMessage(websocket.TextMessage, []byte(chunk)) != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	// Its unsent data would hold back a FIN for minutes; a reset goes at once.
	_ = conn.UnderlyingConn().(*net.TCPConn).SetLinger(0)
	conn.Close()
	<-sent
	waitGroupGone(t, pgid, 4*time.Second) // the stop sequence, and room for load
	tg.waitForLog(t, "session ended", 2*time.Second)
}

func TestGrandchildHoldingStdoutCannotHoldTheConnection(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, "echo $$; sleep 30 & echo leader-exits"))
	conn := tg.dial(t, "/", nil)
	pgid := readPid(t, conn)
	begin := time.Now()
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	if strings.Join(msgs, "|") != "leader-exits" {
		t.Errorf("messages = %q", msgs)
	}
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
	// SIGINT (100 ms) ends sleep; the rest is slack for a loaded machine,
	// far from the 30 s that sleep would take.
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("closed %v after the leader exited, want well under the grandchild's 30 s", took)
	}
	waitGroupGone(t, pgid, 3*time.Second)
}

func TestMaxForksRefusesWith1013(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.MaxForks = 1
	tg := newTestGateway(t, cfg)
	first := tg.dial(t, "/", nil)
	send(t, first, websocket.TextMessage, "first")
	if got := readMessageText(t, first); got != "first" {
		t.Fatalf("echo = %q", got)
	}
	second := tg.dial(t, "/", nil)
	_, ce := readUntilClose(t, second, 3*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "too many connections")

	first.Close()
	tg.waitForLog(t, `close_reason="connection dropped"`, 3*time.Second)
	third := tg.dial(t, "/", nil)
	send(t, third, websocket.TextMessage, "third")
	if got := readMessageText(t, third); got != "third" {
		t.Errorf("after a slot freed, echo = %q", got)
	}
}

func TestCommandThatCannotStartCloses1011(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "not-executable.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := newTestGateway(t, Config{Command: []string{path}})
	conn := tg.dial(t, "/", nil)
	_, ce := readUntilClose(t, conn, 3*time.Second)
	if ce == nil || ce.Code != websocket.CloseInternalServerErr || !strings.Contains(ce.Text, "permission denied") {
		t.Errorf("close = %v, want 1011 saying permission denied", ce)
	}
	tg.waitForLog(t, "command failed to start", time.Second)
}

func TestChildEnvironmentIsCGIOnly(t *testing.T) {
	t.Setenv("WSGATE_CANARY", "must not leak")
	t.Setenv("HTTP_PROXY", "http://must-not-leak")
	cfg := command(t, "env")
	cfg.PassEnv = []string{"PATH=/usr/bin:/bin"}
	tg := newTestGateway(t, cfg)
	header := http.Header{}
	header.Set("X-Custom", "v1")
	header.Add("X-Multi", "a")
	header.Add("X-Multi", "b")
	header.Set("Proxy", "http://attacker")
	header["X_Under"] = []string{"dropped"}
	conn := tg.dial(t, "/some/path?x=1&y=2", header)
	msgs, _ := readUntilClose(t, conn, 5*time.Second)
	env := map[string]string{}
	for _, m := range msgs {
		name, value, _ := strings.Cut(m, "=")
		env[name] = value
	}
	host := strings.TrimPrefix(tg.srv.URL, "http://")
	_, port, _ := net.SplitHostPort(host)
	want := map[string]string{
		"PATH": "/usr/bin:/bin", "SERVER_SOFTWARE": "wsgate/test", "GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": port,
		"REQUEST_METHOD": "GET", "REQUEST_URI": "/some/path?x=1&y=2", "SCRIPT_NAME": "/",
		"PATH_INFO": "/some/path", "PATH_TRANSLATED": "/some/path", "QUERY_STRING": "x=1&y=2",
		"REMOTE_ADDR": "127.0.0.1", "REMOTE_HOST": "127.0.0.1", "REMOTE_IDENT": "", "REMOTE_USER": "",
		"AUTH_TYPE": "", "CONTENT_LENGTH": "", "CONTENT_TYPE": "", "HTTP_HOST": host,
		"HTTP_X_CUSTOM": "v1", "HTTP_X_MULTI": "a, b",
		"HTTP_CONNECTION": "Upgrade", "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_VERSION": "13",
		"HTTP_USER_AGENT": "Go-http-client/1.1",
	}
	for name, value := range want {
		if got, ok := env[name]; !ok || got != value {
			t.Errorf("%s = %q (set %v), want %q", name, got, ok, value)
		}
	}
	var extra []string
	for name := range env {
		if _, ok := want[name]; !ok && name != "REMOTE_PORT" && name != "UNIQUE_ID" && name != "HTTP_SEC_WEBSOCKET_KEY" {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("unexpected variables: %v", extra)
	}
	if env["REMOTE_PORT"] == "" || env["UNIQUE_ID"] == "" {
		t.Errorf("REMOTE_PORT %q and UNIQUE_ID %q must be set", env["REMOTE_PORT"], env["UNIQUE_ID"])
	}
}

func TestPingsKeepAnsweringClientAlive(t *testing.T) {
	t.Parallel()
	// Two intervals (600 ms) to answer each ping: a loaded machine may
	// keep the client from answering for a while, which at 50 ms pings got
	// it rightly dropped. Six pings answered span three times the silence
	// that drops a client; the wall-clock bound only catches pings that stop.
	cfg := command(t, "cat")
	cfg.PingInterval = 300 * time.Millisecond
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	pings := 0
	conn.SetPingHandler(func(data string) error {
		if pings++; pings == 6 {
			_ = conn.SetReadDeadline(time.Now()) // enough: end the read
		}
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, _, err := conn.ReadMessage()
	if !wsconn.IsTimeout(err) {
		t.Fatalf("read after %d pings = %v, want our own deadline: the server must not have dropped us", pings, err)
	}
	if pings < 6 {
		t.Errorf("got %d pings in 15 s at a 300 ms interval", pings)
	}
}

func TestSilentClientIsDroppedAndItsChildStopped(t *testing.T) {
	t.Parallel()
	cfg := script(t, "echo $$; exec cat")
	cfg.PingInterval = 50 * time.Millisecond
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	pgid := readPid(t, conn)
	// Never read again, so pings go unanswered: dropped after 100 ms; the
	// bounds leave room for a loaded machine.
	tg.waitForLog(t, `close_reason="ping timeout"`, 5*time.Second)
	waitGroupGone(t, pgid, 3*time.Second)
	raw := conn.UnderlyingConn()
	_ = raw.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1024)
	for {
		if _, err := raw.Read(buf); err != nil {
			if wsconn.IsTimeout(err) {
				t.Error("server kept the silent client's TCP connection open")
			}
			break
		}
	}
}

func TestShutdownClosesEverySessionWith1001(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, "echo $$; exec cat"))
	var conns []*websocket.Conn
	var pgids []int
	for range 3 {
		conn := tg.dial(t, "/", nil)
		conns = append(conns, conn)
		pgids = append(pgids, readPid(t, conn))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	begin := time.Now()
	go func() { shutdown <- tg.gw.Shutdown(ctx) }()
	for _, conn := range conns {
		_, ce := readUntilClose(t, conn, 3*time.Second)
		assertClose(t, ce, websocket.CloseGoingAway, "server shutting down")
		conn.Close()
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("Shutdown took %v", took)
	}
	for _, pgid := range pgids {
		waitGroupGone(t, pgid, 100*time.Millisecond)
	}
	// New handshakes are refused once shutdown has begun.
	if _, resp, err := websocket.DefaultDialer.Dial(tg.url("/"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("handshake after shutdown: %v, want 503", err)
	}
}

func TestAccessLineSaysHowTheSessionWent(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, "echo $$; exec cat"))
	conn := tg.dial(t, "/path?q=1", nil)
	pgid := readPid(t, conn)
	send(t, conn, websocket.TextMessage, "ab")
	send(t, conn, websocket.TextMessage, "cde")
	readMessageText(t, conn)
	readMessageText(t, conn)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done")
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	logs := tg.waitForLog(t, "session ended", 3*time.Second)
	for _, want := range []string{
		"level=ACCESS", `path="/path?q=1"`, "remote=127.0.0.1:", "duration=",
		"pid=" + itoa(pgid), `exit="exit status 0"`, "close_code=1000", "close_reason=done",
		"msgs_in=2", "bytes_in=5", "msgs_out=3", "bytes_out=",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("access line lacks %q:\n%s", want, logs)
		}
	}
}

func TestAccessLineCountsOnlyWhatTheClientGot(t *testing.T) {
	t.Parallel()
	// The child prints far more than the socket buffers hold; the client
	// reads nothing, so the tail and any close frame never reach it. The
	// access line must not claim 1000 and every message, but say why the
	// client was dropped.
	const lines = 300000
	cfg := script(t, "seq 1 "+itoa(lines))
	cfg.WriteTimeout = 500 * time.Millisecond
	tg := newTestGateway(t, cfg)
	tg.dial(t, "/", nil)
	logs := tg.waitForLog(t, "session ended", 10*time.Second)
	fields := accessFields(t, logs)
	if fields["close_code"] != "1006" || !strings.HasPrefix(fields["close_reason"], "write timeout") {
		t.Errorf("close = %s %q, want 1006 saying the write timed out", fields["close_code"], fields["close_reason"])
	}
	if out, err := strconv.Atoi(fields["msgs_out"]); err != nil || out >= lines {
		t.Errorf("msgs_out = %s, want fewer than the %d lines printed", fields["msgs_out"], lines)
	}
}

func TestAccessLineCountsEveryMessageOfACleanEnd(t *testing.T) {
	t.Parallel()
	const lines = 100000
	tg := newTestGateway(t, script(t, "seq 1 "+itoa(lines)))
	msgs, ce := readUntilClose(t, tg.dial(t, "/", nil), 10*time.Second)
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
	fields := accessFields(t, tg.waitForLog(t, "session ended", 5*time.Second))
	if len(msgs) != lines || fields["msgs_out"] != itoa(lines) || fields["close_code"] != "1000" {
		t.Errorf("client got %d messages; access line says %s messages, close %s; want %d and 1000",
			len(msgs), fields["msgs_out"], fields["close_code"], lines)
	}
}

// accessFields returns the key=value fields of the first access line.
func accessFields(t *testing.T, logs string) map[string]string {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "session ended") {
			continue
		}
		fields := map[string]string{}
		for _, f := range splitLogFields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				if unq, err := strconv.Unquote(v); err == nil {
					v = unq
				}
				fields[k] = v
			}
		}
		return fields
	}
	t.Fatalf("no access line in:\n%s", logs)
	return nil
}

// splitLogFields splits a text log line at spaces outside quotes.
func splitLogFields(line string) []string {
	var fields []string
	quoted, start := false, 0
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '"' && (i == 0 || line[i-1] != '\\'):
			quoted = !quoted
		case line[i] == ' ' && !quoted:
			fields = append(fields, line[start:i])
			start = i + 1
		}
	}
	return append(fields, line[start:])
}

func TestPlainHTTPRequestGets404(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, command(t, "cat"))
	resp, err := http.Get(tg.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.StatusCode)
	}
}

func TestClientThatAcceptsNothingIsDroppedAfterTheWriteTimeout(t *testing.T) {
	t.Parallel()
	cfg := script(t, "echo $$; exec yes 0123456789012345678901234567890123456789")
	cfg.WriteTimeout = 500 * time.Millisecond
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	pgid := readPid(t, conn)
	// Read nothing more: socket buffers fill, then the write times out. The
	// bound tells the 500 ms timeout from the 60 s default, with room for a
	// loaded machine to fill the buffers and run the stop sequence.
	begin := time.Now()
	tg.waitForLog(t, "session ended", 20*time.Second)
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("dropped after %v, want soon after the 500ms write timeout, long before the 60 s default", took)
	}
	waitGroupGone(t, pgid, 5*time.Second)
}

func TestReverseLookupNamesTheClient(t *testing.T) {
	t.Parallel()
	for _, lookup := range []bool{false, true} {
		cfg := script(t, `echo "$REMOTE_ADDR $REMOTE_HOST"`)
		cfg.ReverseLookup = lookup
		tg := newTestGateway(t, cfg)
		msgs, _ := readUntilClose(t, tg.dial(t, "/", nil), 5*time.Second)
		want := "127.0.0.1 127.0.0.1" // without a lookup, REMOTE_HOST is the address
		if lookup {
			names, err := net.LookupAddr("127.0.0.1") // /etc/hosts, on any machine
			if err != nil || len(names) == 0 {
				t.Fatalf("this machine has no name for 127.0.0.1: %v", err)
			}
			want = "127.0.0.1 " + strings.TrimSuffix(names[0], ".")
		}
		if len(msgs) != 1 || msgs[0] != want {
			t.Errorf("reverse lookup %v: %q, want %q", lookup, msgs, want)
		}
	}
}

// When shutdown runs out of time, Abort kills every child and drops every
// client at once, and before it returns each session has been reaped and
// logged, its access line saying that its 1001 was not delivered.
func TestAbortReapsAndLogsEverySessionTruthfully(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, "echo $$; exec yes 0123456789012345678901234567890123456789"))
	conn := tg.dial(t, "/", nil)
	pgid := readPid(t, conn)
	time.Sleep(500 * time.Millisecond) // the client reads nothing: the socket fills

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := tg.gw.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil within 1 ms, with a client that reads nothing")
	}
	tg.gw.Abort()
	if left := groupMembers(pgid); len(left) > 0 {
		t.Errorf("after Abort, the child's group still has %+v", left)
	}
	want := `close_code=1006 close_reason="shutdown cut short; close 1001 not delivered"`
	if logs := tg.logs.String(); !strings.Contains(logs, want) {
		t.Errorf("after Abort, no access line with %s:\n%s", want, logs)
	}
}
