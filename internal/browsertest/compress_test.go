package browsertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestChromiumGetsCompressedMessagesIntact proves that --compress speaks
// permessage-deflate as a browser does: Chromium offers it, wsgate accepts,
// every message arrives as printed (short lines sent plain, JSON lines and a
// line long enough to be streamed in several frames compressed), and the
// wire carries far fewer bytes than the messages hold. A counting proxy in
// front of wsgate measures the wire.
func TestChromiumGetsCompressedMessagesIntact(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"seq":%d,"event":"price","symbol":"ACME","venue":"XNYS","note":"%s"}`, i, strings.Repeat("unchanged ", 12)))
	}
	lines = append(lines, "ok", strings.Repeat("héllo wörld ✓ ", 10000), "", "last")
	file := filepath.Join(t.TempDir(), "lines")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	payload := len(strings.Join(lines, ""))
	// cat waits for the first message, so that the page is listening before
	// any line is printed.
	addr := startGateway(t, "--compress", "sh", "-c", `read go; exec cat "$0"`, file)
	proxy := startCountingProxy(t, addr)
	p := openConsole(t, ctx, "http://"+proxy.addr+"/", "light")

	evaluate(t, ctx, p, `(() => {
		window.wsGot = []; window.wsClosed = null; window.wsExt = null;
		const ws = new WebSocket("ws://`+proxy.addr+`/");
		ws.onopen = () => { window.wsExt = ws.extensions; ws.send("go"); };
		ws.onmessage = e => window.wsGot.push(e.data);
		ws.onclose = e => { window.wsClosed = e.code + " " + e.reason; };
	})()`, nil)
	waitFor(t, ctx, p, "the close", "window.wsClosed !== null")
	var closed, ext string
	var got []string
	evaluate(t, ctx, p, "window.wsClosed", &closed)
	evaluate(t, ctx, p, "window.wsExt", &ext)
	evaluate(t, ctx, p, "window.wsGot", &got)
	if closed != "1000 exit status 0" {
		t.Errorf("closed with %q, want 1000 exit status 0", closed)
	}
	if !strings.HasPrefix(ext, "permessage-deflate") {
		t.Errorf("extensions %q, want permessage-deflate negotiated", ext)
	}
	if len(got) != len(lines) {
		t.Fatalf("the page got %d messages, want %d", len(got), len(lines))
	}
	for i := range lines {
		if got[i] != lines[i] {
			t.Fatalf("message %d is %.40q... (%d bytes), want %.40q... (%d bytes)", i, got[i], len(got[i]), lines[i], len(lines[i]))
		}
	}
	wire := proxy.upgradedBytes()
	t.Logf("%d bytes of messages took %d bytes on the wire", payload, wire)
	if wire > int64(payload)/4 {
		t.Errorf("%d bytes of messages took %d bytes on the wire: not compressed", payload, wire)
	}
}

// countingProxy forwards TCP connections to a gateway and counts the bytes
// the gateway sends on those that upgraded to WebSocket.
type countingProxy struct {
	addr     string
	listener net.Listener
	target   string
	upgraded atomic.Int64
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

// startCountingProxy listens on a loopback port until the test ends.
func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{addr: l.Addr().String(), listener: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// accept is the proxy's only acceptor; each connection gets two copiers.
func (p *countingProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		var upgrade atomic.Bool
		p.wg.Add(2)
		go p.copyRequest(server, client, &upgrade)
		go p.copyResponse(client, server, &upgrade)
	}
}

// copyRequest forwards what the browser sends and notes an upgrade request.
func (p *countingProxy) copyRequest(server, client net.Conn, upgrade *atomic.Bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if bytes.Contains(bytes.ToLower(buf[:n]), []byte("upgrade: websocket")) {
				upgrade.Store(true)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := server.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// copyResponse forwards what the gateway sends, counting it on upgraded
// connections as it goes.
func (p *countingProxy) copyResponse(client, server net.Conn, upgrade *atomic.Bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if upgrade.Load() { // the request came first
				p.upgraded.Add(int64(n))
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := client.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// upgradedBytes returns what the gateway has sent on upgraded connections.
func (p *countingProxy) upgradedBytes() int64 { return p.upgraded.Load() }

func (p *countingProxy) close() {
	p.listener.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
