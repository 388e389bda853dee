package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// scriptDir writes executable scripts (name -> body) under a new directory.
func scriptDir(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// handshakeStatus dials path and returns the HTTP status of a refusal, or
// 101 for a completed handshake.
func handshakeStatus(t *testing.T, tg *testGateway, path string, header http.Header) int {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(tg.url(path), header)
	if err == nil {
		conn.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func TestDirRoutesPathsToScripts(t *testing.T) {
	t.Parallel()
	show := `echo "$SCRIPT_NAME|$PATH_INFO|$PATH_TRANSLATED|$QUERY_STRING"`
	dir := scriptDir(t, map[string]string{"a.sh": show, "sub/b.sh": show})
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("not a script\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := scriptDir(t, map[string]string{"escape.sh": "echo escaped"})
	if err := os.Symlink(filepath.Join(outside, "escape.sh"), filepath.Join(dir, "link.sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	tg := newTestGateway(t, Config{Dir: dir})

	for path, want := range map[string]string{
		"/a.sh":                "/a.sh||/a.sh|",
		"/a.sh/extra/path?q=1": "/a.sh|/extra/path|/a.sh/extra/path|q=1",
		"/sub/b.sh":            "/sub/b.sh||/sub/b.sh|",
	} {
		msgs, ce := readUntilClose(t, tg.dial(t, path, nil), 5*time.Second)
		if len(msgs) != 1 || msgs[0] != want {
			t.Errorf("%s: messages %q, want %q", path, msgs, want)
		}
		assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
	}
	for _, path := range []string{"/missing", "/sub", "/", "/%2e%2e/escape.sh", "/sub/%2E%2E/a.sh", "/sub/../a.sh", "/link.sh", "/linkdir/escape.sh"} {
		if got := handshakeStatus(t, tg, path, nil); got != http.StatusNotFound {
			t.Errorf("%s: handshake status %d, want 404", path, got)
		}
	}
	_, ce := readUntilClose(t, tg.dial(t, "/data.txt", nil), 5*time.Second)
	if ce == nil || ce.Code != websocket.CloseInternalServerErr || !strings.Contains(ce.Text, "permission denied") {
		t.Errorf("non-executable file: close %v, want 1011 permission denied", ce)
	}
}

func TestStaticFilesCannotLeaveTheirDirectory(t *testing.T) {
	t.Parallel()
	static := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret.txt")
	for path, body := range map[string]string{filepath.Join(static, "index.html"): "<h1>home</h1>", filepath.Join(static, "app.js"): "ok()", secret: "secret"} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(static, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	cfg := command(t, "cat")
	cfg.StaticDir = static
	tg := newTestGateway(t, cfg)
	if code, body, _ := get(t, tg.srv.URL+"/app.js"); code != 200 || body != "ok()" {
		t.Errorf("/app.js: %d %q", code, body)
	}
	if code, body, _ := get(t, tg.srv.URL+"/"); code != 200 || body != "<h1>home</h1>" {
		t.Errorf("/: %d %q", code, body)
	}
	for _, path := range []string{"/leak.txt", "/../" + filepath.Base(secret), "/%2e%2e/secret.txt"} {
		if code, body, _ := get(t, tg.srv.URL+path); code < 400 || strings.Contains(body, "secret") {
			t.Errorf("%s: %d %q, want a 4xx without the file", path, code, body)
		}
	}
	// The WebSocket endpoint still answers at every path.
	conn := tg.dial(t, "/app.js", nil)
	send(t, conn, websocket.TextMessage, "ws")
	if got := readMessageText(t, conn); got != "ws" {
		t.Errorf("echo %q", got)
	}
}

func TestCGIScriptsRunForPlainRequests(t *testing.T) {
	t.Parallel()
	cgiDir := scriptDir(t, map[string]string{
		"hello.cgi": `printf 'Content-Type: text/plain\r\n\r\n'; echo "hello $QUERY_STRING $PATH_INFO $SERVER_SOFTWARE"`,
	})
	cfg := command(t, "cat")
	cfg.CGIDir = cgiDir
	tg := newTestGateway(t, cfg)
	code, body, header := get(t, tg.srv.URL+"/hello.cgi/more?x=1")
	if code != 200 || body != "hello x=1 /more wsgate/test\n" || header.Get("Content-Type") != "text/plain" {
		t.Errorf("CGI: %d %q %q", code, body, header.Get("Content-Type"))
	}
	if code, _, _ := get(t, tg.srv.URL+"/missing.cgi"); code != http.StatusNotFound {
		t.Errorf("missing CGI: %d, want 404", code)
	}
}

func TestDevConsoleIsServedForEndpoints(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.DevConsole = true
	tg := newTestGateway(t, cfg)
	code, body, header := get(t, tg.srv.URL+"/any/path")
	if code != 200 || !strings.Contains(body, "<html") || header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("console: %d %q", code, header.Get("Content-Type"))
	}
	for _, external := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", ""), "src=\""+external) {
			t.Errorf("console loads an external asset (%s)", external)
		}
	}
	if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("console CSP = %q", csp)
	}
}

func TestHeadersGoWhereTheirFlagSays(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.Headers = http.Header{"X-All": {"all"}}
	cfg.HeadersWS = http.Header{"X-Ws": {"ws"}}
	cfg.HeadersHTTP = http.Header{"X-Http": {"http"}}
	tg := newTestGateway(t, cfg)
	_, _, plain := get(t, tg.srv.URL+"/")
	if plain.Get("X-All") != "all" || plain.Get("X-Http") != "http" || plain.Get("X-Ws") != "" {
		t.Errorf("plain response headers: %v", plain)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(tg.url("/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if resp.Header.Get("X-All") != "all" || resp.Header.Get("X-Ws") != "ws" || resp.Header.Get("X-Http") != "" {
		t.Errorf("handshake response headers: %v", resp.Header)
	}
}

func TestOriginPolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		origins []string
		origin  string
		want    int
	}{
		{"no-origin-header", nil, "", 101},
		{"same-origin", nil, "http://HOST", 101},
		{"other-origin-refused-by-default", nil, "http://evil.example", 403},
		{"same-host-other-port-refused", nil, "http://127.0.0.1:1", 403},
		{"listed-host", []string{"app.example"}, "https://app.example:8443", 101},
		{"listed-host-port", []string{"app.example:8443"}, "https://app.example:8443", 101},
		{"listed-host-other-port", []string{"app.example:8443"}, "https://app.example:9443", 403},
		{"listed-scheme", []string{"https://app.example"}, "https://app.example", 101},
		{"listed-scheme-mismatch", []string{"https://app.example"}, "http://app.example", 403},
		{"same-origin-still-allowed-with-list", []string{"app.example"}, "http://HOST", 101},
		{"star-allows-any", []string{"*"}, "http://evil.example", 101},
		{"null-origin-refused", nil, "null", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := command(t, "cat")
			cfg.Origins = c.origins
			tg := newTestGateway(t, cfg)
			header := http.Header{}
			if c.origin != "" {
				header.Set("Origin", strings.ReplaceAll(c.origin, "HOST", strings.TrimPrefix(tg.srv.URL, "http://")))
			}
			if got := handshakeStatus(t, tg, "/", header); got != c.want {
				t.Errorf("status %d, want %d", got, c.want)
			}
			if c.want == 403 && !strings.Contains(tg.logs.String(), "--origin") {
				t.Errorf("refusal log names no flag:\n%s", tg.logs.String())
			}
		})
	}
}

func TestBadOriginEntryIsAnError(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.Origins = []string{"http://a.example/path"}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "a.example/path") {
		t.Errorf("New = %v, want an error naming the entry", err)
	}
}

func TestPassStderrSendsBothStreamsAsJSON(t *testing.T) {
	t.Parallel()
	cfg := script(t, `echo out1; sleep 0.05; echo 'err "quoted" <b>' >&2; sleep 0.05; printf 'bad\377\n'`)
	cfg.PassStderr = true
	tg := newTestGateway(t, cfg)
	msgs, ce := readUntilClose(t, tg.dial(t, "/", nil), 5*time.Second)
	want := []string{
		`{"stream":"stdout","data":"out1"}`,
		`{"stream":"stderr","data":"err \"quoted\" <b>"}`,
		`{"stream":"stdout","data":"bad` + "\uFFFD" + `"}`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
}

// Malformed requests get a 4xx, and the server goes on serving others.
func TestMalformedRequestsGet4xx(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, command(t, "cat"))
	addr := strings.TrimPrefix(tg.srv.URL, "http://")
	key := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	upgrade := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	cases := map[string]string{
		"garbage":           "\x00\x01\x02 not http at all\r\n\r\n",
		"no-key":            upgrade + "Sec-WebSocket-Version: 13\r\n\r\n",
		"wrong-version":     upgrade + key + "Sec-WebSocket-Version: 7\r\n\r\n",
		"oversized-header":  "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n",
		"post-upgrade":      strings.Replace(upgrade, "GET", "POST", 1) + key + "Sec-WebSocket-Version: 13\r\n\r\n",
		"no-connection-hdr": "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\n" + key + "Sec-WebSocket-Version: 13\r\n\r\n",
	}
	for name, request := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			go io.WriteString(conn, request)
			status, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			var code int
			if _, err := fmt.Sscanf(status, "HTTP/1.1 %d", &code); err != nil || code < 400 || code > 499 {
				t.Errorf("response %q, want a 4xx", strings.TrimSpace(status))
			}
		})
	}
	conn := tg.dial(t, "/", nil)
	send(t, conn, websocket.TextMessage, "still serving")
	if got := readMessageText(t, conn); got != "still serving" {
		t.Errorf("echo after malformed requests: %q", got)
	}
}

func TestStaticFilesWinOverTheDevConsole(t *testing.T) {
	t.Parallel()
	static := t.TempDir()
	if err := os.MkdirAll(filepath.Join(static, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"index.html": "<h1>home</h1>", "app.js": "ok()", "docs/index.html": "docs"} {
		if err := os.WriteFile(filepath.Join(static, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(static, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := command(t, "cat")
	cfg.StaticDir, cfg.DevConsole = static, true
	tg := newTestGateway(t, cfg)
	for path, want := range map[string]string{"/app.js": "ok()", "/": "<h1>home</h1>", "/docs/": "docs"} {
		if code, body, _ := get(t, tg.srv.URL+path); code != 200 || body != want {
			t.Errorf("%s: %d %.40q, want the file %q", path, code, body, want)
		}
	}
	for _, path := range []string{"/console", "/empty/", "/app.js/more"} {
		if code, body, _ := get(t, tg.srv.URL+path); code != 200 || !strings.Contains(body, "wsgate dev console") {
			t.Errorf("%s: %d, want the console (no file there)", path, code)
		}
	}
}
