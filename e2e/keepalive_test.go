package e2e

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readEvent is one message read by a background reader, or the error that
// ended it.
type readEvent struct {
	msg string
	err error
}

// readInBackground reads conn on a goroutine, sending each message and then
// the final error to the returned channel. The goroutine ends with the
// connection.
func readInBackground(conn *websocket.Conn) <-chan readEvent {
	events := make(chan readEvent, 16)
	go func() {
		for {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, data, err := conn.ReadMessage()
			events <- readEvent{string(data), err}
			if err != nil {
				return
			}
		}
	}()
	return events
}

// nextEvent waits at most 2 s for the background reader's next event.
func nextEvent(t *testing.T, events <-chan readEvent) readEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("nothing read within 2 s")
		return readEvent{}
	}
}

func TestKeepalive_ClientAnsweringPingsStaysConnected(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--pingms=200", "cat")
	conn := dial(t, g.url("/"))
	pings := countPings(conn)
	events := readInBackground(conn)

	select {
	case ev := <-events:
		t.Fatalf("while answering pings the client got %q, %v; want nothing", ev.msg, ev.err)
	case <-time.After(1500 * time.Millisecond):
	}
	if n := pings.Load(); n < 5 {
		t.Fatalf("%d pings in 1.5 s, want about 7 (every 200 ms)", n)
	}
	send(t, conn, "still-here")
	if ev := nextEvent(t, events); ev.err != nil || ev.msg != "still-here" {
		t.Fatalf("after 1.5 s the echo was %q, %v; want %q", ev.msg, ev.err, "still-here")
	}

	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var ce *websocket.CloseError
	if ev := nextEvent(t, events); !errors.As(ev.err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("close answered with %v, want 1000", ev.err)
	}
}

func TestKeepalive_ClientThatNeverAnswersPingsIsDropped(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `echo $$; exec cat`)
	g := startGateway(t, "--pingms=200", script)
	dialed := time.Now()
	conn := dial(t, g.url("/"))
	pid := readPid(t, conn)

	// From here the client reads only raw TCP: it sees pings but never
	// answers them, as a client that stopped reading would not.
	raw := conn.NetConn()
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	var err error
	for err == nil {
		_, err = raw.Read(buf)
	}
	elapsed := time.Since(dialed)
	if isTimeout(err) {
		t.Fatal("the silent client was still connected after 10 s")
	}
	// Not before two intervals; the upper bound is slack for a loaded
	// machine, far from the write timeout's 60 s.
	if elapsed < 400*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("silent client dropped %v after dialling, want after 2 intervals (400 ms), soon", elapsed)
	}
	waitGroupGone(t, pid, 5*time.Second)

	f := g.waitLog(5*time.Second, "session ended", nil)
	if f["pid"] != strconv.Itoa(pid) || f["close_code"] != "1006" || f["close_reason"] != "ping timeout" {
		t.Errorf("access line pid=%s close_code=%s close_reason=%q, want pid=%d 1006 %q",
			f["pid"], f["close_code"], f["close_reason"], pid, "ping timeout")
	}
}
