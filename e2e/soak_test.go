package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// soakScript is the child of the soak test; the query string says how it
// behaves.
const soakScript = `case "$QUERY_STRING" in
exit) echo bye; exit 0 ;;
ignore) trap '' INT TERM; echo ready; while :; do sleep 1; done ;;
fork) sleep 30 & sleep 31 & echo ready; exec cat ;;
escape) setsid sleep 0.2 & echo ready; exec cat ;;
*) echo ready; exec cat ;;
esac`

// soakBehaviours are the children's behaviours, soakEndings how a client
// leaves; the soak test takes every pair in turn.
var (
	soakBehaviours = []string{"echo", "exit", "ignore", "fork", "escape"}
	soakEndings    = []string{"close", "drop", "reset"}
)

// gatewayState is what the soak test compares before and after the churn.
type gatewayState struct {
	fds, threads, goroutines, children, zombies int
}

func (s gatewayState) String() string {
	return fmt.Sprintf("%d descriptors, %d threads, %d goroutines, %d children (%d zombies)",
		s.fds, s.threads, s.goroutines, s.children, s.zombies)
}

// state reads the gateway's descriptors, threads and children from /proc,
// and its goroutines from the line SIGUSR1 makes it log (WSGATE_DEBUG_STATS).
func (g *gatewayProc) state(t *testing.T) gatewayState {
	t.Helper()
	var s gatewayState
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.pid()))
	if err != nil {
		t.Fatal(err)
	}
	s.fds = len(fds)
	s.threads = memoryKB(t, g.pid(), "Threads") // a count, read as the kB fields are
	for _, p := range testrun.Processes() {
		if p.PPid == g.pid() {
			s.children++
			if p.State == "Z" {
				s.zombies++
			}
		}
	}
	before := len(logLines(g.logs(), "stats"))
	if err := g.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(logLines(g.logs(), "stats")) == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no stats line 5 s after SIGUSR1; stderr:\n%s", g.logs())
		}
	}
	lines := logLines(g.logs(), "stats")
	f := lines[len(lines)-1]
	if s.goroutines, err = strconv.Atoi(f["goroutines"]); err != nil {
		t.Fatalf("stats line %v", f)
	}
	return s
}

// soakOnce runs one connection: the child behaves as behaviour says, the
// client checks that it is served, then leaves as ending says. It returns
// what went wrong, or "".
func soakOnce(url, behaviour, ending string) string {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial(url+"?"+behaviour, nil)
	if err != nil {
		return fmt.Sprintf("dial: %v", err)
	}
	resp.Body.Close()
	defer conn.Close()
	_ = conn.UnderlyingConn().SetDeadline(time.Now().Add(10 * time.Second))
	_, first, err := conn.ReadMessage()
	switch {
	case err != nil:
		return fmt.Sprintf("first message: %v", err)
	case behaviour == "exit":
		if string(first) != "bye" {
			return fmt.Sprintf("first message %q, want bye", first)
		}
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
			return fmt.Sprintf("after bye: %v, want close 1000", err)
		}
		return ""
	case string(first) != "ready":
		return fmt.Sprintf("first message %q, want ready", first)
	}
	if behaviour != "ignore" {
		if err := conn.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
			return fmt.Sprintf("send: %v", err)
		}
		if _, echo, err := conn.ReadMessage(); err != nil || string(echo) != "ping" {
			return fmt.Sprintf("echo %q, %v", echo, err)
		}
	}
	return leave(conn, ending)
}

// leave ends a connection: a close handshake, a plain drop (FIN), or a
// reset (RST).
func leave(conn *websocket.Conn, ending string) string {
	switch ending {
	case "close":
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
			return fmt.Sprintf("send close: %v", err)
		}
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					return fmt.Sprintf("close not answered: %v", err)
				}
				return ""
			}
		}
	case "reset":
		_ = conn.UnderlyingConn().(*net.TCPConn).SetLinger(0)
	}
	conn.Close()
	return ""
}

// churn runs n connections, workers at a time, cycling through every
// behaviour and ending, and returns the first failures.
func churn(url string, n, workers int) []string {
	jobs := make(chan int)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				b := soakBehaviours[i%len(soakBehaviours)]
				e := soakEndings[(i/len(soakBehaviours))%len(soakEndings)]
				if r := soakOnce(url, b, e); r != "" {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("connection %d (%s, %s): %s", i, b, e, r))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return failures
}

// settle waits (at most timeout) until the gateway is back to want, in all
// but threads, which Go keeps once started: those may not exceed want's by
// more than slack. It returns the last state seen.
func settle(t *testing.T, g *gatewayProc, want gatewayState, slack int, timeout time.Duration) (gatewayState, bool) {
	t.Helper()
	return waitState(t, g, timeout, func(s, _ gatewayState) bool {
		return s.fds == want.fds && s.goroutines == want.goroutines && s.children == want.children &&
			s.zombies == 0 && s.threads <= want.threads+slack
	})
}

// quiet waits (at most timeout) until the gateway has no child and holds the
// same descriptors, threads and goroutines twice in a row, and returns that.
func quiet(t *testing.T, g *gatewayProc, timeout time.Duration) (gatewayState, bool) {
	t.Helper()
	return waitState(t, g, timeout, func(s, last gatewayState) bool { return s.children == 0 && s == last })
}

// waitState looks at the gateway every 200 ms until done holds for what it
// sees and what it saw before, or timeout passes; it returns the last state.
func waitState(t *testing.T, g *gatewayProc, timeout time.Duration, done func(s, last gatewayState) bool) (gatewayState, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := gatewayState{fds: -1}
	for {
		s := g.state(t)
		if done(s, last) {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		last = s
		time.Sleep(200 * time.Millisecond)
	}
}

// Thousands of short connections, each child and each client behaving in
// one of the ways real ones do: children that exit, that ignore SIGINT and
// SIGTERM, that fork, that leave their group with setsid; clients that
// close cleanly, drop, or reset. Afterwards the gateway holds as many
// descriptors and goroutines as before, has no child and no zombie, and no
// more threads than a warm-up round of the same churn left it with.
func TestSoak_ChurnLeavesNothingBehind(t *testing.T) {
	// Not parallel: the counts are the gateway's own, but the churn loads
	// both cores.
	const (
		warmup      = 150
		connections = 3000
		workers     = 32
		// Go starts threads as blocking system calls (fork, wait4) need them
		// and keeps them: the churn may peak a little above the warm-up
		// (10 to 14 threads, measured); a leak would be one per connection.
		threadSlack = 16
	)
	script := writeScript(t, soakScript)
	g := startGatewayEnv(t, []string{"WSGATE_DEBUG_STATS=1"}, script)
	if failures := churn(g.url("/"), warmup, workers); len(failures) > 0 {
		t.Fatalf("warm-up: %d failures, first: %s", len(failures), failures[0])
	}
	baseline, ok := quiet(t, g, 15*time.Second)
	if !ok {
		t.Fatalf("after the warm-up, the gateway did not settle: %v", baseline)
	}
	t.Logf("baseline after %d connections: %v", warmup, baseline)

	begin := time.Now()
	failures := churn(g.url("/"), connections, workers)
	took := time.Since(begin)
	for i, f := range failures {
		if i == 5 {
			break
		}
		t.Error(f)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d connections failed", len(failures), connections)
	}
	after, ok := settle(t, g, baseline, threadSlack, 15*time.Second)
	t.Logf("%d connections in %v; afterwards: %v", connections, took.Round(time.Millisecond), after)
	if !ok {
		t.Errorf("after the churn: %v; want %v (threads at most %d more)", after, baseline, threadSlack)
	}
	if ends := len(logLines(g.logs(), "session ended")); ends != warmup+connections {
		t.Errorf("%d access lines, want %d", ends, warmup+connections)
	}
	if n := strings.Count(g.logs(), "level=ERROR"); n > 0 {
		t.Errorf("%d error lines in the log", n)
	}
}
