package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/readiness"
)

// A broadcast member over plain TCP has no goroutine while it waits for its
// client: its socket waits in the gateway's readiness set, which a closed
// socket leaves without a word. These tests drop idle members, the ways
// the gateway does, and check that each still ends, logs and leaves.

func TestBroadcastSilentMemberIsDroppedAndTheLastToLeaveStopsTheProcess(t *testing.T) {
	t.Parallel()
	cfg := broadcastScript(t, "echo $$; exec cat")
	cfg.PingInterval = 50 * time.Millisecond
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	pgid := readPid(t, conn)
	// Never read again, so pings go unanswered: the watchdog drops the
	// client after 100 ms, by closing its socket; the bounds leave room
	// for a loaded machine.
	tg.waitForLog(t, `close_reason="ping timeout"`, 5*time.Second)
	waitGroupGone(t, pgid, 5*time.Second)
	tg.gw.mu.Lock()
	open := len(tg.gw.open)
	tg.gw.mu.Unlock()
	if open != 0 {
		t.Errorf("%d sessions still open after the only one was dropped", open)
	}
}

func TestBroadcastAbortEndsAndLogsEveryIdleMember(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, "exec cat"))
	const members = 3
	for range members {
		tg.dial(t, "/", nil) // and never read: the 1001 is not answered
	}
	// The client's handshake returns before the gateway counts its member
	// open: on a loaded machine, a moment before (a CI run saw 5 ms).
	deadline := time.Now().Add(5 * time.Second)
	for {
		tg.gw.mu.Lock()
		open := len(tg.gw.open)
		tg.gw.mu.Unlock()
		if open == members {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d members open after 5 s", open, members)
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_ = tg.gw.Shutdown(ctx)
	start := time.Now()
	tg.gw.Abort()
	// Abort waits a second at most for the sessions it drops; each must
	// have logged by then.
	logs := tg.logs.String()
	got := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `msg="session ended"`) && strings.Contains(line, `close_reason="shutdown cut short`) {
			got++
		}
	}
	if got != members {
		t.Errorf("%d access lines say the shutdown was cut short after Abort (%v), want %d:\n%s",
			got, time.Since(start), members, logs)
	}
}

// Without a readiness set (epoll_create1 can fail, at the open-file limit
// say), a member is read by gorilla on a goroutine of its own, and works.
func TestBroadcastMemberIsReadByGorillaWhenTheReadinessSetCannotBeMade(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, "exec cat"))
	tg.gw.mu.Lock()
	tg.gw.members.New = func() (*readiness.Set, error) { return nil, errors.New("no epoll set in this test") }
	tg.gw.mu.Unlock()
	conn := tg.dial(t, "/", nil)
	send(t, conn, websocket.TextMessage, "hello")
	if got := readMessageText(t, conn); got != "hello" {
		t.Fatalf("got %q back, want %q", got, "hello")
	}
	tg.waitForLog(t, "broadcast member read by a goroutine of its own", 5*time.Second)
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	tg.waitForLog(t, "close_code=1000", 5*time.Second)
}

func TestBroadcastMemberOpenedAsShutdownBeginsIsToldToGoAway(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, "exec cat"))
	shutdown := make(chan error, 1)
	tg.gw.mu.Lock()
	tg.gw.hooks.memberOpening = func() {
		// Shutdown looks for open members before this one is counted.
		go func() { shutdown <- tg.gw.Shutdown(t.Context()) }()
		for !tg.gw.Draining() {
			time.Sleep(time.Millisecond)
		}
	}
	tg.gw.mu.Unlock()
	conn := tg.dial(t, "/", nil)
	_, ce := readUntilClose(t, conn, 5*time.Second)
	assertClose(t, ce, websocket.CloseGoingAway, "server shutting down")
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the member was closed")
	}
}
