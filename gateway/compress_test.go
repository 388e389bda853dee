package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countingConn counts the bytes a client reads off the wire.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// dialCounting dials path, offering permessage-deflate when compress is
// set, and returns the connection, the handshake response and the count of
// bytes read off the wire.
func (tg *testGateway) dialCounting(t *testing.T, path string, compress bool) (*websocket.Conn, *http.Response, *countingConn) {
	t.Helper()
	var counted *countingConn
	d := websocket.Dialer{
		HandshakeTimeout:  5 * time.Second,
		EnableCompression: compress,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			counted = &countingConn{Conn: c}
			return counted, nil
		},
	}
	conn, resp, err := d.Dial(tg.url(path), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn, resp, counted
}

// compressibleOutput is lines as a program might print them: JSON records
// much alike, a line long enough to be streamed in several frames, a short
// one, an empty one, and a last one without a newline.
func compressibleOutput() []string {
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf(`{"seq":%d,"symbol":"ACME","bid":101.%02d,"ask":101.%02d,"venue":"XNYS","status":"open"}`, i, i%100, (i+3)%100))
	}
	lines = append(lines, strings.Repeat(`{"level":"info","msg":"long line"},`, 3000), "ok", "", "last without newline")
	return lines
}

func TestCompressedOutputArrivesIntact(t *testing.T) {
	t.Parallel()
	lines := compressibleOutput()
	file := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	payload := 0
	for _, l := range lines {
		payload += len(l)
	}
	cases := []struct {
		name             string
		serverCompress   bool
		clientOffers     bool
		negotiated       bool
		minWire, maxWire int // bytes read off the wire, handshake and close included
	}{
		// Each message compressed on its own: the long line shrinks a
		// hundredfold, the short ones by a few tens of percent.
		{"offered-and-served", true, true, true, 0, payload / 3},
		// Over the payload: frame headers and the handshake.
		{"not-offered", true, false, false, payload, 2 * payload},
		{"not-served", false, true, false, payload, 2 * payload},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := command(t, "cat", file)
			cfg.Compress = c.serverCompress
			tg := newTestGateway(t, cfg)
			conn, resp, wire := tg.dialCounting(t, "/", c.clientOffers)
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if got := strings.Contains(ext, "permessage-deflate"); got != c.negotiated {
				t.Errorf("Sec-WebSocket-Extensions %q, want permessage-deflate negotiated: %v", ext, c.negotiated)
			}
			msgs, ce := readUntilClose(t, conn, 5*time.Second)
			assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
			if len(msgs) != len(lines) {
				t.Fatalf("got %d messages, want %d", len(msgs), len(lines))
			}
			for i := range lines {
				if msgs[i] != lines[i] {
					t.Fatalf("message %d is %.40q... (%d bytes), want %.40q... (%d bytes)", i, msgs[i], len(msgs[i]), lines[i], len(lines[i]))
				}
			}
			got := int(wire.read.Load())
			t.Logf("%d payload bytes took %d bytes on the wire", payload, got)
			if got < c.minWire || got > c.maxWire {
				t.Errorf("%d bytes on the wire for %d of payload, want %d to %d", got, payload, c.minWire, c.maxWire)
			}
		})
	}
}

func TestCompressedBinaryIsByteExactBothWays(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.Binary, cfg.Compress = true, true
	tg := newTestGateway(t, cfg)
	conn, _, wire := tg.dialCounting(t, "/", true)
	var payload []byte
	for i := range 100000 {
		payload = append(payload, byte(i), 0, 0xff, '\n', '\r', byte(i>>8))
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, payload); err != nil {
		t.Fatal(err)
	}
	var got []byte
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(payload) {
		msgType, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		if msgType != websocket.BinaryMessage {
			t.Fatalf("message type %d, want binary", msgType)
		}
		got = append(got, data...)
	}
	if !bytes.Equal(got, payload) {
		t.Error("the compressed binary round trip changed the bytes")
	}
	if n := wire.read.Load(); n > int64(len(payload)/2) {
		t.Errorf("%d bytes on the wire for %d of payload: not compressed", n, len(payload))
	}
}

func TestCompressedClientMessageOverTheLimitCloses1009(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.Compress = true
	cfg.MaxMessageSize = 1000
	tg := newTestGateway(t, cfg)
	conn, _, _ := tg.dialCounting(t, "/", true)
	// Both compress to a few dozen bytes, well under the limit on the wire.
	atLimit, over := strings.Repeat("a", 1000), strings.Repeat("b", 100000)
	send(t, conn, websocket.TextMessage, atLimit)
	if got := readMessageText(t, conn); got != atLimit {
		t.Fatalf("echo of a message at the limit: %d bytes, want %d", len(got), len(atLimit))
	}
	send(t, conn, websocket.TextMessage, over)
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	if len(msgs) != 0 {
		t.Errorf("got %d messages after the one over the limit, want none", len(msgs))
	}
	assertClose(t, ce, websocket.CloseMessageTooBig, "message too big")
}

func TestIdleCompressedSessionsHoldNoCompressor(t *testing.T) {
	// Not parallel: it measures the heap of the whole test process.
	cfg := script(t, `while IFS= read -r line; do echo "$line$line$line$line"; done`)
	cfg.Compress = true
	tg := newTestGateway(t, cfg)
	const sessions = 20
	line := strings.Repeat("compress me ", 10)
	before := heapInUse()
	for range sessions {
		conn, _, _ := tg.dialCounting(t, "/", true)
		send(t, conn, websocket.TextMessage, line)
		if got := readMessageText(t, conn); got != strings.Repeat(line, 4) {
			t.Fatalf("echo %q", got)
		}
	}
	// Every session is idle now, its connection open. A compressor holds
	// about 1 MiB: were each session to keep one, the heap would grow by
	// 20 MiB.
	grown := heapInUse() - before
	t.Logf("heap grew by %d KiB with %d idle sessions that compressed", grown>>10, sessions)
	if limit := int64(sessions * 300 << 10); grown > limit {
		t.Errorf("heap grew by %d KiB with %d idle sessions, want under %d KiB", grown>>10, sessions, limit>>10)
	}
}

// heapInUse returns the bytes of live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// In broadcast mode a line is compressed once, when it is published, and
// each member gets the encoding it negotiated.
func TestBroadcastMembersGetTheEncodingTheyNegotiated(t *testing.T) {
	t.Parallel()
	lines := compressibleOutput()[:300] // the JSON lines: whole, each over frames.MinDeflateSize
	for i := range lines {
		lines[i] += strings.Repeat(" padding", 10)
	}
	lines = append(lines, "short")
	file := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := broadcastScript(t, `read -r go; cat "`+file+`"; exec cat >/dev/null`)
	cfg.Compress = true
	tg := newTestGateway(t, cfg)
	offers := []bool{true, false, true}
	conns := make([]*websocket.Conn, len(offers))
	wires := make([]*countingConn, len(offers))
	for i, offer := range offers {
		conns[i], _, wires[i] = tg.dialCounting(t, "/", offer)
	}
	send(t, conns[1], websocket.TextMessage, "go")
	for i, c := range conns {
		got := readN(t, c, len(lines))
		for j := range lines {
			if got[j] != lines[j] {
				t.Fatalf("client %d (offering deflate: %v): message %d is %.40q..., want %.40q...", i, offers[i], j, got[j], lines[j])
			}
		}
	}
	plain := wires[1].read.Load()
	for i, offer := range offers {
		t.Logf("client %d, offering deflate %v: %d bytes on the wire", i, offer, wires[i].read.Load())
		if n := wires[i].read.Load(); offer && n > plain*3/4 {
			t.Errorf("client %d negotiated permessage-deflate but read %d bytes, the plain one %d", i, n, plain)
		}
	}
}
