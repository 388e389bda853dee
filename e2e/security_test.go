package e2e

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DNS rebinding (DESIGN section 6): a page on evil.example whose name
// resolves to 127.0.0.1 sends Host: evil.example:PORT and a matching
// Origin, which the same-origin check alone accepts. With every listener on
// loopback, a Host that is no loopback name or address is refused with 403
// and a log line naming the flag that allows it.
func TestSecurity_NonLoopbackHostIsRefusedWhenEveryListenerIsLoopback(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "cat")
	_, port, _ := strings.Cut(g.addr, ":")
	cases := []struct {
		host string
		want int
	}{
		{"evil.example:" + port, http.StatusForbidden},
		{"evil.example", http.StatusForbidden},
		{"10.0.0.1:" + port, http.StatusForbidden},
		{"localhost.evil.example:" + port, http.StatusForbidden},
		{"127.0.0.1:" + port, http.StatusSwitchingProtocols},
		{"localhost:" + port, http.StatusSwitchingProtocols},
		{"LOCALHOST", http.StatusSwitchingProtocols},
		{"app.localhost:" + port, http.StatusSwitchingProtocols},
		{"127.1.2.3:" + port, http.StatusSwitchingProtocols},
		{"[::1]:" + port, http.StatusSwitchingProtocols},
	}
	for _, c := range cases {
		origin := "Origin: http://" + c.host
		_, _, status := rawUpgrade(t, g.addr, upgradeRequest("/", c.host, origin))
		if status != c.want {
			t.Errorf("Host %s with a matching Origin: status %d, want %d", c.host, status, c.want)
		}
	}
	f := g.waitLog(2*time.Second, "handshake refused: host not allowed", nil)
	if f["host"] != "evil.example:"+port || !strings.Contains(f["hint"], "--origin=evil.example") {
		t.Errorf("refusal logged as %v, want the host and a hint naming --origin=evil.example", f)
	}
	// Plain HTTP requests (CGI, static files, the console) are refused too:
	// a rebound page could read their responses.
	conn := rawConn(t, g.addr)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: evil.example:" + port + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if status := responseStatus(t, conn); status != http.StatusForbidden {
		t.Errorf("plain GET with Host evil.example: status %d, want 403", status)
	}
}

// responseStatus reads an HTTP response head from conn and returns its
// status code.
func responseStatus(t *testing.T, conn net.Conn) int {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The names --origin lists are allowed as hosts, too.
func TestSecurity_HostAllowedByOriginFlagIsServed(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--origin=evil.example", "cat")
	_, port, _ := strings.Cut(g.addr, ":")
	host := "evil.example:" + port
	if _, _, status := rawUpgrade(t, g.addr, upgradeRequest("/", host, "Origin: http://"+host)); status != http.StatusSwitchingProtocols {
		t.Errorf("Host %s allowed by --origin: status %d, want 101", host, status)
	}
	if _, _, status := rawUpgrade(t, g.addr, upgradeRequest("/", "other.example:"+port)); status != http.StatusForbidden {
		t.Errorf("Host other.example not allowed by --origin: status %d, want 403", status)
	}
}

// A trusted reverse proxy on loopback passes on the public name it was
// asked for: nginx in front of a gateway on 127.0.0.1, which says whom it
// forwards. A request from its address without forwarding headers is a
// local client like any other (see admission_test.go).
func TestSecurity_HostFromATrustedProxyIsServed(t *testing.T) {
	t.Parallel()
	forwarded := "X-Forwarded-For: 203.0.113.7"
	g := startGateway(t, "--trustedproxy=127.0.0.1", "cat")
	if _, _, status := rawUpgrade(t, g.addr, upgradeRequest("/", "dash.example.com", forwarded)); status != http.StatusSwitchingProtocols {
		t.Errorf("Host dash.example.com from a trusted proxy: status %d, want 101", status)
	}
	other := startGateway(t, "--trustedproxy=10.0.0.1", "cat")
	if _, _, status := rawUpgrade(t, other.addr, upgradeRequest("/", "dash.example.com", forwarded)); status != http.StatusForbidden {
		t.Errorf("Host dash.example.com from an untrusted peer: status %d, want 403", status)
	}
}

// A listener that is not on loopback (here a Unix socket, which a reverse
// proxy reaches with the public name as Host) turns the check off.
func TestSecurity_HostCheckIsOffUnlessEveryListenerIsLoopback(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "wsgate.sock")
	g := startGateway(t, "--unixsocket="+sock, "cat")
	if _, _, status := rawUpgrade(t, g.addr, upgradeRequest("/", "public.example")); status != http.StatusSwitchingProtocols {
		t.Errorf("Host public.example with a Unix socket listener too: status %d, want 101", status)
	}
}

// A request path holding a control character once decoded gets 400 before
// any upgrade, in command mode and in --dir mode: it could otherwise put a
// newline into PATH_INFO, or a NUL that makes the command fail to start.
func TestSecurity_PathWithControlCharactersGets400(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "echo.sh"), []byte("#!/bin/sh\necho \"$PATH_INFO\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	modes := map[string][]string{"command": {"cat"}, "dir": {"--dir=" + dir}}
	paths := []string{"/echo.sh/x%00y", "/echo.sh/a%0ab", "/echo.sh/a%0db", "/echo.sh/%1b[31m", "/echo.sh/del%7f", "/echo.sh/tab%09"}
	for mode, args := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, args...)
			for _, path := range paths {
				if _, _, status := rawUpgrade(t, g.addr, upgradeRequest(path, g.addr)); status != http.StatusBadRequest {
					t.Errorf("%s mode, handshake for %s: status %d, want 400", mode, path, status)
				}
			}
			if _, _, status := rawUpgrade(t, g.addr, upgradeRequest("/echo.sh/fine%20path", g.addr)); status != http.StatusSwitchingProtocols {
				t.Errorf("%s mode, handshake for a path without control characters: status %d, want 101", mode, status)
			}
			time.Sleep(200 * time.Millisecond)
			if logs := g.logs(); strings.Contains(logs, "command failed to start") || len(logLines(logs, "session ended")) > 1 {
				t.Errorf("%s mode: a path with control characters reached a session:\n%s", mode, logs)
			}
		})
	}
}

// A client that sends its request headers a byte at a time (slowloris)
// holds its connection no longer than the headers' bound, 10 s, and holds
// no child meanwhile.
func TestSecurity_HeadersThatTrickleAreCutOffAfterTheirBound(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "cat")
	conn := rawConn(t, g.addr)
	begin := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go trickleHandshake(conn, upgradeRequest("/", g.addr), 500*time.Millisecond, stop)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := conn.Read(make([]byte, 512))
	took := time.Since(begin)
	if isTimeout(err) || took < 9*time.Second || took > 20*time.Second {
		t.Errorf("the trickling connection ended after %v (%v), want after the 10 s bound on request headers", took.Round(time.Millisecond), err)
	}
	if children := childrenOf(g.pid()); len(children) > 0 {
		t.Errorf("wsgate has children %v for a handshake never finished", children)
	}
}
