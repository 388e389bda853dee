package e2e

// Fairness and session lifetimes, end to end: handshakes per second and
// connections per client address (IPv6 per /64, after --trustedproxy), and
// sessions closed for their age or their silence, with real clients.

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// dialFrom opens a WebSocket from the local address ip, with header.
func dialFrom(t *testing.T, ip, url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	conn, resp, err := d.Dial(url, header)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// countLines returns how many lines the file at path has; 0 when it does
// not exist.
func countLines(path string) int {
	data, _ := os.ReadFile(path)
	return strings.Count(string(data), "\n")
}

// Handshakes come in bursts of up to --ratelimit per address, then get
// 429 with a Retry-After of at most 10 s, before anything is started;
// another address has a bucket of its own.
func TestRateLimit_HandshakesOverTheRateGet429WithRetryAfter(t *testing.T) {
	t.Parallel()
	t.Run("burst", func(t *testing.T) {
		t.Parallel()
		metrics := freeAddr(t)
		g := startGateway(t, "--ratelimit=2", "--metrics="+metrics, "cat")
		// Four at once: two tokens, two refusals (a token takes 500 ms to
		// come back, far longer than four handshakes on loopback).
		var wg sync.WaitGroup
		statuses := make([]int, 4)
		for i := range statuses {
			wg.Go(func() {
				_, resp, err := dialFrom(t, "127.0.0.1", g.url("/"), nil)
				switch {
				case err == nil:
					statuses[i] = http.StatusSwitchingProtocols
				case resp != nil:
					statuses[i] = resp.StatusCode
					if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
						t.Errorf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
					}
				}
			})
		}
		wg.Wait()
		served, refused := 0, 0
		for _, s := range statuses {
			switch s {
			case http.StatusSwitchingProtocols:
				served++
			case http.StatusTooManyRequests:
				refused++
			}
		}
		if served != 2 || refused != 2 {
			t.Fatalf("four handshakes at once: statuses %v, want two served and two 429", statuses)
		}
		if _, resp, err := dialFrom(t, clientIP, g.url("/"), nil); err != nil {
			t.Fatalf("another address: %v (%v)", err, resp)
		}
		s := waitMetric(t, metrics, 2, "wsgate_handshakes_refused_total", "reason=rate")
		s.expect(t, 0, "wsgate_handshakes_refused_total", "reason=limit")
		g.waitLog(5*time.Second, "handshake refused: too many handshakes from your address", func(f map[string]string) bool {
			return f["hint"] == "raise --ratelimit"
		})
	})
	t.Run("python-and-retry-after-bound", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "started")
		// One handshake per 20 s: the wait is capped at 10 s.
		g := startGateway(t, "--ratelimit=0.05", writeScript(t, "echo started >> "+marker+"; echo hello"))
		if got := runPythonSession(t, g.url("/")); len(got.Received) != 1 || got.CloseCode != 1000 {
			t.Fatalf("the first python handshake: %+v", got)
		}
		got := runPythonSession(t, g.url("/"))
		if got.Status != http.StatusTooManyRequests || got.Headers["Retry-After"] != "10" {
			t.Fatalf("the second python handshake: %+v, want 429 with Retry-After 10", got)
		}
		if n := countLines(marker); n != 1 {
			t.Errorf("%d programs started for one admitted handshake", n)
		}
	})
}

// Connections per client address are bounded: over the bound, 1013 "too
// many connections from your address", counted as per_address and not as
// limit; the address is the one a --trustedproxy names, IPv6 per /64; a
// slot is given back when its connection ends.
func TestPerIP_ConnectionsPerAddressAreBoundedAndGivenBack(t *testing.T) {
	t.Parallel()
	metrics := freeAddr(t)
	g := startGateway(t, "--maxconnsperip=2", "--maxconns=20", "--trustedproxy="+clientIP, "--metrics="+metrics, "cat")
	held := []*websocket.Conn{dial(t, g.url("/")), dial(t, g.url("/"))}
	for _, c := range held {
		send(t, c, "in")
		if got := receive(t, c); got != "in" {
			t.Fatalf("echo %q", got)
		}
	}
	expectRefused(t, g.url("/"), websocket.CloseTryAgainLater, "too many connections from your address")
	if got := runPythonSession(t, g.url("/")); got.CloseCode != websocket.CloseTryAgainLater || got.CloseReason != "too many connections from your address" {
		t.Errorf("python from the same address: %+v, want 1013", got)
	}

	// Through the trusted proxy: the address it names counts, per /64.
	forwarded := func(client string) *websocket.Conn {
		c, resp, err := dialFrom(t, clientIP, g.url("/"), http.Header{"X-Forwarded-For": {client}})
		if err != nil {
			t.Fatalf("through the proxy for %s: %v (%v)", client, err, resp)
		}
		return c
	}
	for _, client := range []string{"2001:db8:1:2::1", "2001:db8:1:2::ffff"} {
		c := forwarded(client)
		send(t, c, "v6")
		if got := receive(t, c); got != "v6" {
			t.Fatalf("%s: echo %q", client, got)
		}
	}
	// The same /64, a third connection; then another /64.
	expectClose(t, forwarded("2001:db8:1:2:aaaa::1"), websocket.CloseTryAgainLater, "too many connections from your address")
	c := forwarded("2001:db8:1:3::1")
	send(t, c, "other block")
	if got := receive(t, c); got != "other block" {
		t.Fatalf("another /64: echo %q", got)
	}

	s := waitMetric(t, metrics, 3, "wsgate_handshakes_refused_total", "reason=per_address")
	s.expect(t, 0, "wsgate_handshakes_refused_total", "reason=limit")

	// A slot comes back when its connection ends.
	closeFromClient(t, held[0], websocket.CloseNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := dialFrom(t, "127.0.0.1", g.url("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, "again")
		msgs, ce, _ := readUntilClose(c, time.Second)
		if len(msgs) == 1 && msgs[0] == "again" {
			break
		}
		if ce == nil || ce.Code != websocket.CloseTryAgainLater || time.Now().After(deadline) {
			t.Fatalf("after one of two connections ended: %q %v, want a served connection", msgs, ce)
		}
	}
}

// stopSequenceScript says hello, echoes, and notes in marker that its
// stdin was closed: the first step of the stop sequence.
func stopSequenceScript(t *testing.T, marker string) string {
	return writeScript(t, "echo hello; cat; echo stdin-closed > "+marker)
}

// A session that old is closed with 1001 "session lifetime reached", however
// busy, and its program gets the stop sequence.
func TestLifetime_ASessionThatOldIsClosedWith1001(t *testing.T) {
	t.Parallel()
	const lifetime = 1500 * time.Millisecond
	marker := filepath.Join(t.TempDir(), "stopped")
	g := startGateway(t, "--maxlifetime="+lifetime.String(), stopSequenceScript(t, marker))

	got := runPythonSession(t, g.url("/"))
	if got.CloseCode != websocket.CloseGoingAway || got.CloseReason != "session lifetime reached" || len(got.Received) != 1 {
		t.Errorf("python saw %+v, want hello and 1001 session lifetime reached", got)
	}

	opened := time.Now()
	conn := dial(t, g.url("/"))
	r := startReader(t, conn)
	for i := 0; ; i++ { // busy all along: only its age ends it
		select {
		case err := <-r.end:
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != websocket.CloseGoingAway || ce.Text != "session lifetime reached" {
				t.Fatalf("ended with %v, want 1001 session lifetime reached", err)
			}
			if elapsed := time.Since(opened); elapsed < lifetime {
				t.Fatalf("closed after %v, before its lifetime", elapsed)
			}
			waitFile(t, marker)
			return
		case <-time.After(100 * time.Millisecond):
			if i > 100 {
				t.Fatal("not closed within 10 s")
			}
			_ = conn.WriteMessage(websocket.TextMessage, []byte("busy"))
		case <-r.msgs:
		}
	}
}

// waitFile waits (at most 5 s) for the mark of a program that got the
// stop sequence.
func waitFile(t *testing.T, path string) { testrun.WaitFile(t, path, 5*time.Second) }

// A session with no data message either way for --idletimeout is closed
// with 1001 "idle", even while pings go both ways; data from either side
// keeps it open.
func TestIdle_ASessionWithoutDataIsClosedWith1001(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	marker := filepath.Join(t.TempDir(), "stopped")
	g := startGateway(t, "--idletimeout="+idle.String(), "--pingms=500", stopSequenceScript(t, marker))

	got := runPythonSession(t, g.url("/"))
	if got.CloseCode != websocket.CloseGoingAway || got.CloseReason != "idle" {
		t.Errorf("python saw %+v, want 1001 idle", got)
	}
	waitFile(t, marker)
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}

	// gorilla answers the server's pings and pings itself: still idle.
	conn := dial(t, g.url("/"))
	if got := receive(t, conn); got != "hello" {
		t.Fatalf("first message %q", got)
	}
	quiet := time.Now()
	stopPings := make(chan struct{})
	defer close(stopPings)
	go func() {
		for {
			select {
			case <-stopPings:
				return
			case <-time.After(100 * time.Millisecond):
				_ = conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
			}
		}
	}()
	expectClose(t, conn, websocket.CloseGoingAway, "idle")
	if elapsed := time.Since(quiet); elapsed < idle {
		t.Fatalf("closed %v after the last data message, before --idletimeout", elapsed)
	}
	waitFile(t, marker)

	// Data every 250 ms for 2.5 s keeps another open all along (and keeps
	// it heard from, since it reads only between its messages).
	busy := dial(t, g.url("/"))
	receive(t, busy)
	for range 10 {
		time.Sleep(250 * time.Millisecond)
		send(t, busy, "still here")
		if got := receive(t, busy); got != "still here" {
			t.Fatalf("a busy session: %q", got)
		}
	}
	expectClose(t, busy, websocket.CloseGoingAway, "idle")
}
