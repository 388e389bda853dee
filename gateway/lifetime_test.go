package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/testrun"
)

// stdinClosedScript says hello, echoes, and notes in marker when its stdin
// closes: the first step of the stop sequence.
func stdinClosedScript(marker string) string {
	return "echo hello; cat; echo stdin-closed > " + marker
}

// waitFile waits (at most 5 s) for path to exist.
func waitFile(t *testing.T, path string) { testrun.WaitFile(t, path, 5*time.Second) }

func TestLifetime_ASessionThatOldIsClosedWith1001AndItsChildStopped(t *testing.T) {
	t.Parallel()
	const lifetime = 700 * time.Millisecond
	marker := filepath.Join(t.TempDir(), "stopped")
	cfg := script(t, stdinClosedScript(marker))
	cfg.MaxLifetime = lifetime
	tg := newTestGateway(t, cfg)
	opened := time.Now()
	conn := tg.dial(t, "/", nil)
	stop := keepSending(conn, 100*time.Millisecond) // busy, not idle: only its age ends it
	defer stop()
	msgs, ce := readUntilClose(t, conn, 10*time.Second)
	assertClose(t, ce, websocket.CloseGoingAway, "session lifetime reached")
	if elapsed := time.Since(opened); elapsed < lifetime {
		t.Fatalf("closed after %v, before its lifetime of %v", elapsed, lifetime)
	}
	if len(msgs) < 2 {
		t.Fatalf("got %q: the session was not served meanwhile", msgs)
	}
	waitFile(t, marker)
	tg.waitForLog(t, "closing the session: session lifetime reached", 5*time.Second)
}

// keepSending sends a message on conn every interval until stop, and reads
// nothing.
func keepSending(conn *websocket.Conn, interval time.Duration) (stop func()) {
	return every(interval, func() error { return conn.WriteMessage(websocket.TextMessage, []byte("busy")) })
}

// keepPinging pings conn every interval until stop.
func keepPinging(conn *websocket.Conn, interval time.Duration) (stop func()) {
	return every(interval, func() error {
		return conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
	})
}

// every calls write every interval, from a goroutine of its own, until it
// fails or stop is called; stop waits for the goroutine.
func every(interval time.Duration, write func() error) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if write() != nil {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

func TestIdle_PingsDoNotCountAsActivity(t *testing.T) {
	t.Parallel()
	const idle = 600 * time.Millisecond
	marker := filepath.Join(t.TempDir(), "stopped")
	cfg := script(t, stdinClosedScript(marker))
	cfg.IdleTimeout = idle
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	if got := readMessageText(t, conn); got != "hello" {
		t.Fatalf("first message %q", got)
	}
	quiet := time.Now()
	stop := keepPinging(conn, 50*time.Millisecond)
	defer stop()
	_, ce := readUntilClose(t, conn, 10*time.Second)
	assertClose(t, ce, websocket.CloseGoingAway, "idle")
	if elapsed := time.Since(quiet); elapsed < idle {
		t.Fatalf("closed %v after the last data message, before the idle timeout of %v", elapsed, idle)
	}
	waitFile(t, marker)
}

func TestIdle_DataEitherWayKeepsTheSessionOpen(t *testing.T) {
	t.Parallel()
	const idle = 600 * time.Millisecond
	busy := 4 * idle
	t.Run("from-the-client", func(t *testing.T) {
		t.Parallel()
		cfg := command(t, "cat")
		cfg.IdleTimeout = idle
		tg := newTestGateway(t, cfg)
		conn := tg.dial(t, "/", nil)
		stop := keepSending(conn, idle/4)
		time.AfterFunc(busy, stop)
		start := time.Now()
		_, ce := readUntilClose(t, conn, 10*time.Second)
		assertClose(t, ce, websocket.CloseGoingAway, "idle")
		if elapsed := time.Since(start); elapsed < busy+idle {
			t.Fatalf("closed after %v although the client sent data for %v", elapsed, busy)
		}
	})
	t.Run("from-the-program", func(t *testing.T) {
		t.Parallel()
		cfg := script(t, "i=0; while [ $i -lt 16 ]; do echo tick; sleep 0.15; i=$((i+1)); done; exec cat")
		cfg.IdleTimeout = idle
		tg := newTestGateway(t, cfg)
		start := time.Now()
		msgs, ce := readUntilClose(t, tg.dial(t, "/", nil), 15*time.Second)
		assertClose(t, ce, websocket.CloseGoingAway, "idle")
		if len(msgs) != 16 || time.Since(start) < 16*150*time.Millisecond {
			t.Fatalf("closed after %v and %d ticks: the program's output did not count", time.Since(start), len(msgs))
		}
	})
}

func TestTokenExpiry_ClosesWith1008AtExpNeverBefore(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("k", 32))
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.LoadTokens(keyFile, auth.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, broadcast := range []bool{false, true} {
		name := map[bool]string{false: "own-child", true: "broadcast-member"}[broadcast]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := command(t, "cat")
			cfg.Broadcast = broadcast
			cfg.Auth = auth.Methods{Tokens: tokens}
			tg := newTestGateway(t, cfg)
			exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
			token := testrun.SignToken(t, jose.HS256, secret, "", jwt.Claims{Subject: "dora", Expiry: jwt.NewNumericDate(exp)})
			conn := tg.dial(t, "/", http.Header{"Authorization": {"Bearer " + token}})
			send(t, conn, websocket.TextMessage, "before exp")
			if got := readMessageText(t, conn); got != "before exp" {
				t.Fatalf("echo %q", got)
			}
			_, ce := readUntilClose(t, conn, 10*time.Second)
			assertClose(t, ce, websocket.ClosePolicyViolation, "token expired")
			if now := time.Now(); now.Before(exp) {
				t.Fatalf("closed %v before exp", exp.Sub(now))
			}
			if _, resp, err := websocket.DefaultDialer.Dial(tg.url("/"), http.Header{"Authorization": {"Bearer " + token}}); err == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the expired token once more: %v %v, want 401", err, resp)
			}
		})
	}
}
