package e2e

// --subprotocol and --compress through the real binary, with gorilla and
// python3-websockets as clients (Chromium: internal/browsertest).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pythonSession is what testdata/ws_client.py prints, all of it.
type pythonSession struct {
	pythonResult
	Status      int               `json:"status"`  // of a refused handshake
	Headers     map[string]string `json:"headers"` // of a refused handshake
	Subprotocol *string           `json:"subprotocol"`
	Extensions  []string          `json:"extensions"`
}

// runPythonSession runs testdata/ws_client.py with args (at most 10 s).
func runPythonSession(t *testing.T, args ...string) pythonSession {
	t.Helper()
	requirePythonWebsockets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"testdata/ws_client.py"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python client: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var s pythonSession
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("python client printed %q: %v", stdout.String(), err)
	}
	return s
}

func TestSubprotocol_PythonClientGetsItsFirstListedOffer(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--subprotocol=chat.v2,chat.v1", writeScript(t, `printf '%s\n' "$WEBSOCKET_PROTOCOL"`))
	cases := []struct {
		name   string
		offers []string
		want   string // chosen, and what the child prints
		status int
	}{
		{"first-listed-offer", []string{"other", "chat.v1", "chat.v2"}, "chat.v1", 0},
		{"only-unlisted-offers", []string{"chat.v3"}, "", 400},
		{"no-offer", nil, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			for _, p := range c.offers {
				args = append(args, "--protocol="+p)
			}
			got := runPythonSession(t, append(args, g.url("/"))...)
			if c.status != 0 {
				if got.Status != c.status {
					t.Errorf("handshake answered %+v, want status %d", got, c.status)
				}
				g.waitLog(2*time.Second, "handshake refused: no subprotocol in common", func(f map[string]string) bool {
					return f["offered"] == "chat.v3" && f["served"] == "chat.v2,chat.v1"
				})
				return
			}
			chosen := ""
			if got.Subprotocol != nil {
				chosen = *got.Subprotocol
			}
			if chosen != c.want || !reflect.DeepEqual(got.Received, []string{c.want}) || got.CloseCode != 1000 {
				t.Errorf("subprotocol %q, child printed %q, close %d; want %q twice and 1000", chosen, got.Received, got.CloseCode, c.want)
			}
		})
	}
}

func TestCompress_PythonClientGetsEveryMessageIntact(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--compress", "cat")
	long := strings.Repeat(`{"field":"value","n":12345},`, 3500) // streamed in several frames
	messages := []string{"short", long, strings.Repeat("héllo wörld ✓ ", 100), ""}
	got := runPythonSession(t, append([]string{g.url("/")}, messages...)...)
	if !reflect.DeepEqual(got.Extensions, []string{"permessage-deflate"}) {
		t.Errorf("extensions %q, want permessage-deflate", got.Extensions)
	}
	if !reflect.DeepEqual(got.Received, messages) {
		t.Errorf("echoes differ from what was sent: got %d messages of %v bytes", len(got.Received), lengths(got.Received))
	}
}

func TestCompress_OffWithoutTheFlag(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "cat")
	got := runPythonSession(t, g.url("/"), "hello")
	if len(got.Extensions) != 0 || !reflect.DeepEqual(got.Received, []string{"hello"}) {
		t.Errorf("extensions %q, received %q; want none and the echo", got.Extensions, got.Received)
	}
}

func lengths(msgs []string) []int {
	n := make([]int, len(msgs))
	for i, m := range msgs {
		n[i] = len(m)
	}
	return n
}

// wireCounter counts the bytes a client reads off the wire.
type wireCounter struct {
	net.Conn
	read *atomic.Int64
}

func (c wireCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// The flag works with --linebuffer, and a client that does not offer
// compression shares the gateway with one that does.
func TestCompress_EachClientGetsWhatItOffered(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"seq":%d,"event":"update","payload":{"status":"ok","items":["alpha","beta","gamma","delta"],"note":"%s"}}`,
			i, strings.Repeat("same text again ", 8)))
	}
	file := filepath.Join(t.TempDir(), "lines")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "--compress", "--linebuffer", "cat", file)
	payload := len(strings.Join(lines, ""))
	wire := map[bool]int64{}
	for _, offer := range []bool{true, false} {
		var read atomic.Int64
		d := websocket.Dialer{
			HandshakeTimeout:  5 * time.Second,
			EnableCompression: offer,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				return wireCounter{c, &read}, err
			},
		}
		conn, resp, err := d.Dial(g.url("/"), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		resp.Body.Close()
		if negotiated := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"); negotiated != offer {
			t.Errorf("client offering compression: %v; negotiated: %v", offer, negotiated)
		}
		msgs := expectClose(t, conn, websocket.CloseNormalClosure, "exit status 0")
		conn.Close()
		if !reflect.DeepEqual(msgs, lines) {
			t.Fatalf("offering compression %v: got %d messages, want the %d lines", offer, len(msgs), len(lines))
		}
		wire[offer] = read.Load()
	}
	t.Logf("%d bytes of lines: %d on the wire compressed, %d plain", payload, wire[true], wire[false])
	if wire[false] < int64(payload) || wire[true] > int64(payload)/2 {
		t.Errorf("%d bytes of lines took %d on the wire compressed and %d plain; want under half and over all", payload, wire[true], wire[false])
	}
}

// RFC 7692: an offer the gateway cannot honour is declined, and the client
// is served without compression; one it can is accepted, and what the
// client compresses with its window arrives intact.
func TestCompress_PythonClientOffersAreAcceptedOrDeclinedAsRFC7692Says(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--compress", "cat")
	long := strings.Repeat("compress me, ", 2000)
	cases := []struct {
		offer    string
		accepted bool
	}{
		{"server_max_window_bits=8", false},
		{"server_max_window_bits=15,client_max_window_bits", false},
		{"client_max_window_bits=9", true},
		{"client_max_window_bits,server_no_context_takeover,client_no_context_takeover", true},
	}
	for _, c := range cases {
		t.Run(c.offer, func(t *testing.T) {
			t.Parallel()
			got := runPythonSession(t, "--deflate="+c.offer, g.url("/"), "short", long)
			want := ""
			if c.accepted {
				want = "permessage-deflate"
			}
			if strings.Join(got.Extensions, ",") != want || !reflect.DeepEqual(got.Received, []string{"short", long}) || got.CloseCode != 1000 {
				t.Errorf("extensions %q, echoes of %v bytes, close %d; want %q, the messages back, 1000",
					got.Extensions, lengths(got.Received), got.CloseCode, want)
			}
		})
	}
}
