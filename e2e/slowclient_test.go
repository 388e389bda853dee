package e2e

// Slow clients: a client that reads slowly, or stops reading for a while,
// holds the child's output back in the socket buffers. The contract (DESIGN
// sections 3 and 5) is that such a client is not dropped as a ping timeout
// because a ping could not get past the data, that it gets every line and
// then the close frame, and that control frames (ping, close) are not held
// behind the data: a close from the client stops the child within the stop
// sequence, and a shutdown still exits 0 in time.
//
// These tests are timing-sensitive, so none of them runs in parallel with
// the rest of the suite.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// numberedPadding is what follows the number on each line of
// numberedLinesScript: with "line %08d " it makes lines of 70 bytes with the
// newline.
const numberedPadding = "padding-padding-padding-padding-padding-padding-padding"

// numberedLinesScript is a child that prints lines 1 to n as numberedLine
// has them and exits 0, never reading its stdin.
func numberedLinesScript(t *testing.T, n int) string {
	return writeScript(t, fmt.Sprintf(`exec seq -f 'line %%08g %s' 1 %d`, numberedPadding, n))
}

// numberedLine is line i of numberedLinesScript, without its newline.
func numberedLine(i int) string { return fmt.Sprintf("line %08d %s", i, numberedPadding) }

// floodArg is the line `yes floodArg` prints over and over: 1000 bytes with
// the newline, so that megabytes of backlog are a few thousand messages.
var floodArg = strings.Repeat("y", 999)

// pacer keeps a reader at about rate bytes per second.
type pacer struct {
	rate  float64
	start time.Time
	bytes int64
}

func newPacer(bytesPerSecond int) *pacer {
	return &pacer{rate: float64(bytesPerSecond), start: time.Now()}
}

// add counts n bytes read and sleeps while the reader is ahead of its rate.
func (p *pacer) add(n int) {
	p.bytes += int64(n)
	due := time.Duration(float64(p.bytes) / p.rate * float64(time.Second))
	if ahead := due - time.Since(p.start); ahead > time.Millisecond {
		time.Sleep(ahead)
	}
}

// sessionEnds describes the access lines logged so far, for failure messages
// that say why the gateway ended a session ("" when none has ended).
func sessionEnds(g *gatewayProc) string {
	var ends []string
	for _, f := range logLines(g.logs(), "session ended") {
		ends = append(ends, fmt.Sprintf("close_code=%s close_reason=%q duration=%s", f["close_code"], f["close_reason"], f["duration"]))
	}
	return strings.Join(ends, "; ")
}

// readNumberedLines reads lines 1 to n of numberedLinesScript, pacing the
// reader when p is not nil, then the close frame, all within timeout. It
// returns "" when every line came in order and then close 1000 "exit status
// 0", else what went wrong. It does not touch the test.
func readNumberedLines(conn *websocket.Conn, n int, p *pacer, timeout time.Duration) string {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	for i := 1; i <= n; i++ {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return fmt.Sprintf("after %d of %d lines: %v", i-1, n, err)
		}
		if want := numberedLine(i); string(data) != want {
			return fmt.Sprintf("line %d is %q, want %q", i, data, want)
		}
		if p != nil {
			p.add(len(data) + 1)
		}
	}
	_, data, err := conn.ReadMessage()
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		if ce.Code != websocket.CloseNormalClosure || ce.Text != "exit status 0" {
			return fmt.Sprintf("after all %d lines: close %d %q, want 1000 %q", n, ce.Code, ce.Text, "exit status 0")
		}
		return ""
	case err != nil:
		return fmt.Sprintf("after all %d lines, no close frame: %v", n, err)
	default:
		return fmt.Sprintf("after all %d lines, an extra message %q instead of the close frame", n, data)
	}
}

func TestSlowClient_ReadingSlowerThanYesIsNotDroppedAsPingTimeout(t *testing.T) {
	const (
		pingInterval = 500 * time.Millisecond
		slowFor      = 3 * time.Second // 6 ping intervals: 3 ping timeouts (2 intervals each)
		rate         = 200 << 10       // bytes per second, far below what yes prints
	)
	line := strings.Repeat("y", 99) // 100 bytes with the newline
	g := startGateway(t, "--pingms="+strconv.Itoa(int(pingInterval/time.Millisecond)), "yes", line)
	conn := dial(t, g.url("/"))
	pings := countPings(conn) // answers every ping it reads, as gorilla's default does

	// The client reads all the time, just slower than yes writes: the data
	// it accepts shows it is alive, however late each ping reaches it.
	p := newPacer(rate)
	var msgs int
	for time.Since(p.start) < slowFor {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("the slowly reading client got %v after %v and %d messages; gateway ended the session: %s",
				err, time.Since(p.start).Round(time.Millisecond), msgs, sessionEnds(g))
		}
		if string(data) != line {
			t.Fatalf("message %d is %.20q..., want %.20q...", msgs+1, data, line)
		}
		msgs++
		p.add(len(data) + 1)
	}
	t.Logf("read %d messages (%d kB) in %v, %d pings among them", msgs, p.bytes>>10, time.Since(p.start).Round(time.Millisecond), pings.Load())

	// What the client has not read yet may still be in the socket buffers
	// after the gateway gave up on it: the gateway must not have ended the
	// session, and the client, now reading at full speed, must get through
	// that backlog and keep receiving.
	if ends := sessionEnds(g); ends != "" {
		t.Errorf("the gateway ended the session of a client that kept reading for %v (pings every %v): %s", slowFor, pingInterval, ends)
	}
	fast, more := time.Now(), 0
	for time.Since(fast) < time.Second {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := conn.ReadMessage(); err != nil {
			t.Fatalf("reading at full speed after %v of slow reading, the client got %v after %v and %d more messages; gateway ended the session: %s",
				slowFor, err, time.Since(fast).Round(time.Millisecond), more, sessionEnds(g))
		}
		more++
	}
}

func TestSlowClient_HeartbeatSendingClientsGetEveryLineAndThen1000(t *testing.T) {
	// Each client keeps reading and sends a heartbeat every 500 ms; the
	// heartbeats go to the child's stdin, which it never reads. The clients
	// start late and read well below what the gateway can send them (some
	// 7 MB/s in all on two idle cores under the race detector, half that on
	// a loaded machine), so the socket buffers stay full: when the child
	// exits, megabytes are still queued, seconds of reading away. All of it
	// must arrive, then the close frame, however long the client takes.
	const (
		lines   = 100000 // 7 MB
		clients = 2
		rate    = 1 << 20 // bytes per second per client: about 7 s of reading
	)
	g := startGateway(t, numberedLinesScript(t, lines))
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, g.url("/"))
	}

	results := make(chan string, clients)
	var wg sync.WaitGroup
	for i, conn := range conns {
		done := make(chan struct{})
		wg.Add(2)
		go func() { // the heartbeat: a message every 500 ms while reading
			defer wg.Done()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
					if err := conn.WriteMessage(websocket.TextMessage, []byte("heartbeat")); err != nil {
						return // the reader reports what went wrong
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			defer close(done)
			time.Sleep(time.Second) // slow to start too: the buffers fill
			if r := readNumberedLines(conn, lines, newPacer(rate), 60*time.Second); r != "" {
				results <- fmt.Sprintf("client %d: %s", i+1, r)
				return
			}
			results <- ""
		}()
	}
	for range conns {
		if r := <-results; r != "" {
			t.Error(r)
		}
	}
	wg.Wait()
	if t.Failed() {
		t.Logf("gateway ended the sessions: %s", sessionEnds(g))
	}
}

func TestSlowClient_PausedClientResumesAndGetsEverything(t *testing.T) {
	const (
		lines = 200000 // 14 MB
		pause = 8 * time.Second
	)
	g := startGateway(t, "--pingms=2000", numberedLinesScript(t, lines))
	conn := dial(t, g.url("/"))

	// The client reads nothing for four ping intervals: every ping is
	// behind data it has not accepted, so it cannot be answered yet.
	time.Sleep(pause)
	if r := readNumberedLines(conn, lines, nil, 30*time.Second); r != "" {
		t.Errorf("after a %v pause: %s; gateway ended the session: %s", pause, r, sessionEnds(g))
	}
}

func TestSlowClient_PingAndShutdownCloseAreNotHeldBehindData(t *testing.T) {
	t.Run("ShutdownWithNonReadingClientExits0InTime", func(t *testing.T) {
		// Pings are far apart, so that the session is still open when the
		// signal comes: the close frame for the shutdown is what meets the
		// data the client does not read.
		//
		// The child floods in bursts of 8 kB, about 4 MB/s: the socket
		// buffers (some 4 MB) are full well within the 2 s. Each burst is
		// read and flushed on its own, so the write that the full socket
		// blocks is always a whole batch's flush, the close frame queued
		// behind it. (With yes, the write that blocks is as often a single
		// frame; the close then gives up after its 1 s and the shutdown
		// takes some 2 s, which the contract allows.)
		script := writeScript(t, `echo $$; exec perl -e '$| = 1; $l = ("y" x 999) . "\n"; while (1) { print $l x 8; select(undef, undef, undef, 0.002) }'`)
		g := startGateway(t, "--pingms=30000", script)
		conn := dial(t, g.url("/"))
		pgid := readPid(t, conn)
		time.Sleep(2 * time.Second) // the client reads nothing: the socket fills

		g.stop(syscall.SIGTERM)
		// The contract: exit 0 within about 2 s + 3 x closems (closems is 0);
		// the slack is for a loaded machine.
		code, elapsed := g.wait(15 * time.Second)
		if code != 0 || elapsed > 5*time.Second {
			t.Errorf("with a client reading nothing, wsgate exited %d %v after SIGTERM, want 0 within 5 s", code, elapsed.Round(time.Millisecond))
		}
		if strings.Contains(g.logs(), "shutdown cut short") {
			t.Errorf("wsgate logged %q: the close frame to a client reading nothing held the shutdown up", "shutdown cut short")
		}
		waitGroupGone(t, pgid, time.Second)
	})

	t.Run("ResumingClientSeesPingWithinASecond", func(t *testing.T) {
		const pingInterval = 300 * time.Millisecond
		g := startGateway(t, "--pingms="+strconv.Itoa(int(pingInterval/time.Millisecond)), "yes", floodArg)
		conn := dial(t, g.url("/"))
		var pinged atomic.Bool
		conn.SetPingHandler(func(data string) error {
			pinged.Store(true)
			return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		time.Sleep(2 * time.Second) // the client reads nothing: the socket fills

		// Reading at full speed, the client drains the socket buffers in
		// milliseconds; a ping queued meanwhile must come between data
		// frames, not after a whole held batch nor never.
		resumed := time.Now()
		_ = conn.SetReadDeadline(resumed.Add(2 * time.Second))
		var msgs, bytes int
		for !pinged.Load() {
			if time.Since(resumed) > time.Second {
				t.Fatalf("no ping within 1 s of resuming, after %d messages (%d kB) of data; pings every %v", msgs, bytes>>10, pingInterval)
			}
			_, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("resuming after 2 s, the client got %v after %d messages (%d kB) and %v, without any ping; gateway ended the session: %s",
					err, msgs, bytes>>10, time.Since(resumed).Round(time.Millisecond), sessionEnds(g))
			}
			msgs, bytes = msgs+1, bytes+len(data)+1
		}
		t.Logf("ping %v after resuming, after %d messages (%d kB)", time.Since(resumed).Round(time.Millisecond), msgs, bytes>>10)
	})
}

func TestSlowClient_CloseFromNonReadingClientStopsChildWithinStopSequence(t *testing.T) {
	script := writeScript(t, `echo $$; exec yes `+floodArg)
	g := startGateway(t, script)
	conn := dial(t, g.url("/"))
	pgid := readPid(t, conn)
	time.Sleep(time.Second) // the client reads nothing: output backs up

	// The client's close is read at once (the gateway reads the client
	// whatever the output does); the stop sequence is stdin closed, then
	// SIGINT after 100 ms (closems is 0), which ends yes. A second leaves
	// room for a loaded machine (719 ms seen) and is still under what a
	// close reply held behind the data costs: a second more.
	const bound = time.Second
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatalf("send close: %v", err)
	}
	sent := time.Now()
	for len(testrun.GroupMembers(pgid)) > 0 && time.Since(sent) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	gone := time.Since(sent)
	switch left := testrun.GroupMembers(pgid); {
	case len(left) > 0:
		t.Errorf("the child's group %d still has %+v 10 s after the client's close, want it gone within %v", pgid, left, bound)
	case gone > bound:
		t.Errorf("the child's group was gone %v after the client's close, want within %v (stdin close, then SIGINT after 100 ms)", gone.Round(time.Millisecond), bound)
	default:
		t.Logf("the child's group was gone %v after the client's close", gone.Round(time.Millisecond))
	}
}
