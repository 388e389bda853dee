package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/process"
)

// recorder is an observe.Observer that notes every event as a line.
type recorder struct {
	mu     sync.Mutex
	events []string
	counts map[string]int64
}

func newRecorder() *recorder { return &recorder{counts: map[string]int64{}} }

func (r *recorder) note(event string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event)
	r.counts[event] += n
}

func (r *recorder) count(event string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[event]
}

func (r *recorder) HandshakeRefused(reason observe.RefusalReason) {
	r.note("refused "+string(reason), 1)
}
func (r *recorder) ConnectionOpened(e string) { r.note("opened "+e, 1) }
func (r *recorder) ConnectionClosed(e string, code int, d time.Duration) {
	if d <= 0 {
		r.note("closed with no duration", 1)
	}
	r.note(fmt.Sprintf("closed %s %d", e, code), 1)
}
func (r *recorder) ChildStarted(e string)     { r.note("started "+e, 1) }
func (r *recorder) ChildStartFailed(e string) { r.note("failed "+e, 1) }
func (r *recorder) ChildEnded(e string, status process.Status) {
	r.note("ended "+e, 1)
	r.note(fmt.Sprintf("exit %s %s", e, status), 1)
}
func (r *recorder) FirstMessage(e string, after time.Duration) { r.note("first message "+e, 1) }
func (r *recorder) StderrLine(e string)                        { r.note("stderr "+e, 1) }
func (r *recorder) Messages(e string, dir observe.Direction, msgs, bytes int64) {
	r.note(fmt.Sprintf("msgs %s %s", e, dir), msgs)
	r.note(fmt.Sprintf("bytes %s %s", e, dir), bytes)
}
func (r *recorder) SlowClient(e string)                  { r.note("slow "+e, 1) }
func (r *recorder) BroadcastSubscribers(e string, d int) { r.note("subscribers "+e, int64(d)) }

// waitCount waits until event has been counted want times, or fails.
func (r *recorder) waitCount(t *testing.T, event string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.count(event) != want {
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			keys := make([]string, 0, len(r.counts))
			for k, v := range r.counts {
				keys = append(keys, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(keys)
			t.Fatalf("%s counted %d, want %d; counts: %s", event, r.counts[event], want, strings.Join(keys, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestObserverIsToldOfASessionByEndpoint(t *testing.T) {
	t.Parallel()
	dir := scriptDir(t, map[string]string{"echo.sh": "exec cat", "sub/fail.sh": "echo oops >&2; printf 'no newline' >&2; exit 3"})
	obs := newRecorder()
	tg := newTestGateway(t, Config{Dir: dir, Observer: obs})

	conn := tg.dial(t, "/echo.sh/extra?q=1", nil)
	for _, m := range []string{"one", "three", "x"} {
		send(t, conn, websocket.TextMessage, m)
		readMessageText(t, conn)
	}
	if s := tg.gw.Stats(); s.Connections != 1 || s.Children != 1 {
		t.Errorf("stats while open: %+v, want 1 connection and 1 child", s)
	}
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"))
	readUntilClose(t, conn, 5*time.Second)
	obs.waitCount(t, "closed /echo.sh 4000", 1)
	obs.waitCount(t, "ended /echo.sh", 1)

	fail := tg.dial(t, "/sub/fail.sh", nil)
	readUntilClose(t, fail, 5*time.Second)
	obs.waitCount(t, "closed /sub/fail.sh 1011", 1)

	for event, want := range map[string]int64{
		"opened /echo.sh": 1, "started /echo.sh": 1,
		"msgs /echo.sh in": 3, "bytes /echo.sh in": 9, "msgs /echo.sh out": 3, "bytes /echo.sh out": 9,
		"opened /sub/fail.sh": 1, "started /sub/fail.sh": 1, "ended /sub/fail.sh": 1,
		"closed with no duration":     0,
		"exit /echo.sh exit status 0": 1, "exit /sub/fail.sh exit status 3": 1,
		"first message /echo.sh": 1, "first message /sub/fail.sh": 0, // a close frame is no message
		"stderr /echo.sh": 0, "stderr /sub/fail.sh": 2,
	} {
		obs.waitCount(t, event, want)
	}
	if s := tg.gw.Stats(); s.Connections != 0 || s.Children != 0 {
		t.Errorf("stats after: %+v, want none", s)
	}
}

func TestObserverIsToldWhyHandshakesAreRefused(t *testing.T) {
	t.Parallel()
	dir := scriptDir(t, map[string]string{"echo.sh": "exec cat"})
	obs := newRecorder()
	tg := newTestGateway(t, Config{Dir: dir, Observer: obs, MaxForks: 1})

	handshakeStatus(t, tg, "/missing.sh", nil)
	obs.waitCount(t, "refused not_found", 1)
	handshakeStatus(t, tg, "/echo.sh", http.Header{"Origin": {"http://evil.example"}})
	obs.waitCount(t, "refused origin", 1)
	badHandshake(t, tg)
	obs.waitCount(t, "refused bad_request", 1)

	first := tg.dial(t, "/echo.sh", nil)
	send(t, first, websocket.TextMessage, "hold")
	readMessageText(t, first)
	second := tg.dial(t, "/echo.sh", nil)
	readUntilClose(t, second, 5*time.Second)
	obs.waitCount(t, "refused limit", 1)
	obs.waitCount(t, "closed /echo.sh 1013", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tg.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := handshakeStatus(t, tg, "/echo.sh", nil); got != http.StatusServiceUnavailable {
		t.Errorf("handshake after shutdown: %d, want 503", got)
	}
	obs.waitCount(t, "refused shutdown", 1)
}

// badHandshake sends an upgrade request without a key.
func badHandshake(t *testing.T, tg *testGateway) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(tg.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /echo.sh HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400") {
		t.Errorf("answer %q, want 400", buf[:n])
	}
}

func TestObserverIsToldOfAChildThatCannotStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plain.sh"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	obs := newRecorder()
	tg := newTestGateway(t, Config{Dir: dir, Observer: obs})
	conn := tg.dial(t, "/plain.sh", nil)
	readUntilClose(t, conn, 5*time.Second)
	obs.waitCount(t, "failed /plain.sh", 1)
	obs.waitCount(t, "closed /plain.sh 1011", 1)
	obs.waitCount(t, "started /plain.sh", 0)
}

func TestObserverIsToldOfBroadcastSubscribersSharedChildrenAndSlowClients(t *testing.T) {
	t.Parallel()
	obs := newRecorder()
	cfg := broadcastScript(t, ackPacedLinesScript)
	cfg.QueueSize, cfg.Observer = 256, obs
	tg := newTestGateway(t, cfg)
	slow := tg.dial(t, "/", nil)
	fast := tg.dial(t, "/", nil)
	obs.waitCount(t, "subscribers /", 2)
	obs.waitCount(t, "started /", 1)
	obs.waitCount(t, "opened /", 2)
	if s := tg.gw.Stats(); s.Connections != 2 || s.Children != 1 {
		t.Errorf("stats: %+v, want 2 connections sharing 1 child", s)
	}
	// The slow client reads nothing until its queue overflows; the fast one
	// sets the pace.
	send(t, fast, websocket.TextMessage, "go")
	deadline := time.Now().Add(30 * time.Second)
	for obs.count("slow /") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no slow client counted")
		}
		readChunk(t, fast)
	}
	_, ce := readUntilClose(t, slow, 10*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "client too slow")
	obs.waitCount(t, "closed / 1013", 1)
	obs.waitCount(t, "subscribers /", 1)
	obs.waitCount(t, "slow /", 1)

	_ = fast.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	readUntilClose(t, fast, 10*time.Second)
	obs.waitCount(t, "subscribers /", 0)
	obs.waitCount(t, "ended /", 1) // the last client left: the shared child is stopped
	obs.waitCount(t, "first message /", 2)
}
