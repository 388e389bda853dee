package e2e

// Admission end to end: what a refused or failed handshake holds and
// starts, the metric labels a client can reach, and a trusted proxy on
// loopback. Each test runs the real binary with real clients.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// expectServed dials url and checks that the connection is served: its first
// message arrives, no close frame instead.
func expectServed(t *testing.T, url, want string) *websocket.Conn {
	t.Helper()
	c := dial(t, url)
	if got := receive(t, c); got != want {
		t.Fatalf("%s: first message %q, want %q", url, got, want)
	}
	return c
}

// expectRefused dials url and checks that it is closed at once with code and
// reason.
func expectRefused(t *testing.T, url string, code int, reason string) {
	t.Helper()
	expectClose(t, dial(t, url), code, reason)
}

// A broadcast join that fails gives back the connection slot it took, in
// each of the three ways a join fails: the command cannot start, --maxforks
// is full, the bus is unavailable. Before, each failure held a --maxconns
// slot for good, and with --maxconns=1 every later client got 1013.
func TestAdmission_AFailedBroadcastJoinGivesItsSlotBack(t *testing.T) {
	t.Run("cannot-start", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "ok.sh"), "#!/bin/sh\necho ok\nexec cat\n")
		writeFile(t, filepath.Join(dir, "broken.sh"), "#!/nonexistent/interpreter\n")
		for _, name := range []string{"ok.sh", "broken.sh"} {
			if err := os.Chmod(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		g := startGateway(t, "--broadcast", "--maxconns=1", "--dir="+dir)
		for range 3 {
			c := dial(t, g.url("/broken.sh"))
			_, ce, err := readUntilClose(c, 5*time.Second)
			if err != nil || ce.Code != websocket.CloseInternalServerErr || !strings.HasPrefix(ce.Text, "cannot start command") {
				t.Fatalf("a script that cannot start: close %v, %v; want 1011 cannot start command", ce, err)
			}
		}
		expectServed(t, g.url("/ok.sh"), "ok").Close()
	})
	t.Run("maxforks-full", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, "--broadcast", "--maxforks=1", "--maxconns=2", writeScript(t, "echo ok; exec cat"))
		holder := expectServed(t, g.url("/?a"), "ok")
		for range 3 {
			expectRefused(t, g.url("/?b"), websocket.CloseTryAgainLater, "too many connections")
		}
		// The second slot is free: a client of the running stream gets in.
		late := dial(t, g.url("/?a"))
		send(t, late, "both see this")
		for _, c := range []*websocket.Conn{late, holder} {
			if got := receive(t, c); got != "both see this" {
				t.Fatalf("got %q", got)
			}
		}
	})
	t.Run("bus-unavailable", func(t *testing.T) {
		t.Parallel()
		redis := testrun.StartRedis(t)
		g := startGateway(t, "--broadcast", "--maxconns=1", "--bus="+redis.URL(), writeScript(t, "echo ok; exec cat"))
		redis.Kill()
		for range 3 {
			expectRefused(t, g.url("/"), websocket.CloseTryAgainLater, "bus unavailable")
		}
		redis.Start()
		g.waitLog(10*time.Second, "bus reachable again", nil)
		expectServed(t, g.url("/"), "ok")
	})
}

// handshakeHead sends an upgrade request with the given extra header lines
// and returns the status line and headers of the answer.
func handshakeHead(t *testing.T, addr, method, path string, lines ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%s\r\n",
		method, path, addr, strings.Join(append(lines, ""), "\r\n"))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	head, _, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
	return head
}

// A handshake that the upgrade would refuse is refused before anything is
// started or held for it, in both modes: before, each bad handshake in
// broadcast mode started the shared process.
func TestAdmission_ABadHandshakeStartsNothing(t *testing.T) {
	bad := []struct {
		name, method string
		lines        []string
		status       string
	}{
		{"version-8", "GET", []string{"Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}, "HTTP/1.1 400"},
		{"no-version", "GET", []string{"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}, "HTTP/1.1 400"},
		{"no-key", "GET", []string{"Sec-WebSocket-Version: 13"}, "HTTP/1.1 400"},
		{"short-key", "GET", []string{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: c2hvcnQ="}, "HTTP/1.1 400"},
		{"post", "POST", []string{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Content-Length: 0"}, "HTTP/1.1 405"},
	}
	for _, mode := range []string{"per-connection", "broadcast"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "started")
			args := []string{"--metrics=" + freeAddr(t)}
			if mode == "broadcast" {
				args = append(args, "--broadcast")
			}
			g := startGateway(t, append(args, writeScript(t, "echo started >> "+marker+"; exec cat"))...)
			for range 3 {
				for _, b := range bad {
					head := handshakeHead(t, g.addr, b.method, "/", b.lines...)
					if !strings.HasPrefix(head, b.status) {
						t.Errorf("%s: answered %q, want %s", b.name, head, b.status)
					}
					if b.name == "version-8" && !strings.Contains(head, "Sec-Websocket-Version: 13") {
						t.Errorf("%s: answer names no supported version: %q", b.name, head)
					}
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("bad handshakes started the command")
			}
			if kids := childrenOf(g.pid()); len(kids) > 0 {
				t.Errorf("bad handshakes left children %v", kids)
			}
			// A good client afterwards is served, and starts the command.
			c := dial(t, g.url("/"))
			send(t, c, "hello")
			if got := receive(t, c); got != "hello" {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

// seriesOf returns the label sets of a metric family's series.
func (s scrape) seriesOf(name string) []string {
	var out []string
	for _, m := range s[name].GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		out = append(out, strings.Join(labels, ","))
	}
	return out
}

// Close codes a client chooses are counted as "other": 300 codes make no
// 300 series.
func TestAdmission_ClientCloseCodesAreNotMetricLabels(t *testing.T) {
	t.Parallel()
	metrics := freeAddr(t)
	g := startGateway(t, "--metrics="+metrics, "cat")
	const n = 300
	for i := range n {
		c := dial(t, g.url("/"))
		closeFromClient(t, c, 3000+i, "mine")
		c.Close()
	}
	c := dial(t, g.url("/"))
	closeFromClient(t, c, websocket.CloseNormalClosure, "")
	// Each is counted when its session has ended, after the close handshake
	// the client saw: wait for both.
	waitMetric(t, metrics, n, "wsgate_connections_total", "code=other", "endpoint=/")
	s := waitMetric(t, metrics, 1, "wsgate_connections_total", "code=1000", "endpoint=/")
	if series := s.seriesOf("wsgate_connections_total"); len(series) != 2 {
		t.Errorf("wsgate_connections_total has series %q, want code=other and code=1000", series)
	}
}

// However many URLs reach one script through a symlinked directory, it is
// one endpoint: one metric label, one broadcast stream and process.
func TestAdmission_AScriptReachedThroughSymlinksIsOneEndpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "pid.sh")
	writeFile(t, script, "#!/bin/sh\necho \"pid $$\"\nexec cat\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	metrics := freeAddr(t)
	g := startGateway(t, "--broadcast", "--metrics="+metrics, "--dir="+dir)
	var first string
	paths := []string{"/pid.sh", "/loop/pid.sh", "/loop/loop/pid.sh", "/loop/loop/loop/loop/pid.sh"}
	for i, path := range paths {
		c := dial(t, g.url(path))
		if i == 0 {
			first = receive(t, c)
			continue
		}
		send(t, c, path)
		if got := receive(t, c); got != path {
			t.Errorf("%s: got %q, want its own line back from the one shared process (%s)", path, got, first)
		}
	}
	s := waitMetric(t, metrics, float64(len(paths)), "wsgate_connections", "endpoint=/pid.sh")
	if series := s.seriesOf("wsgate_connections"); len(series) != 1 {
		t.Errorf("wsgate_connections has series %q, want endpoint=/pid.sh alone", series)
	}
	s.expect(t, 1, "wsgate_child_starts_total", "endpoint=/pid.sh")
}

// With --trustedproxy=127.0.0.1 on a loopback listener (the README's nginx
// setup), a local client that sends no forwarding header is a direct
// client: the Host check applies to it. What a trusted proxy forwards
// passes, and an address it forwards reaches REMOTE_ADDR only as an IP
// address, its zone dropped.
func TestAdmission_ATrustedLoopbackProxyWithoutForwardingHeadersIsADirectClient(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--trustedproxy=127.0.0.1", writeScript(t, `echo "$REMOTE_ADDR"`))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	direct := http.Header{"Host": {"rebound.example"}}
	if _, resp, err := d.Dial(g.url("/"), direct); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a local client naming a foreign Host without forwarding headers: %v, %v; want 403", resp, err)
	}
	g.waitLog(5*time.Second, "handshake refused: host not allowed", func(f map[string]string) bool { return f["level"] == "WARN" })
	forwarded := http.Header{"Host": {"dash.example"}, "X-Forwarded-For": {"fe80::1%<script>"}}
	conn, resp, err := d.Dial(g.url("/"), forwarded)
	if err != nil {
		t.Fatalf("a forwarded request: %v, %v", resp, err)
	}
	defer conn.Close()
	if got := receive(t, conn); got != "fe80::1" {
		t.Errorf("REMOTE_ADDR = %q, want fe80::1 without the zone", got)
	}
}
