package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// Resume (README "Resume after a reconnect"): clients that give
// last_event_id get every line with its position, and from a position in
// the stream's history exactly the lines after it, on one instance or any
// of a bus's, across restarts and failovers.

// taggedMsg is a message of a client that follows positions.
type taggedMsg struct {
	id    string // EPOCH:SEQ
	event string // "joined" or "reset" for the greeting, "" for a line
	line  string
}

// seq is the message's SEQ.
func (m taggedMsg) seq() int {
	_, s, _ := strings.Cut(m.id, ":")
	n, _ := strconv.Atoi(s)
	return n
}

// epoch is the message's EPOCH.
func (m taggedMsg) epoch() string {
	e, _, _ := strings.Cut(m.id, ":")
	return e
}

// parseTaggedMsg reads "id: E:S\n\nLINE" or "id: E:S\nevent: EV\n\n".
func parseTaggedMsg(msg string) (taggedMsg, error) {
	head, line, ok := strings.Cut(msg, "\n\n")
	id, event, hasEvent := strings.Cut(head, "\nevent: ")
	id, isID := strings.CutPrefix(id, "id: ")
	if !ok || !isID || !strings.Contains(id, ":") || (hasEvent && line != "") {
		return taggedMsg{}, fmt.Errorf("message %.60q is neither a line with its position nor a greeting", msg)
	}
	return taggedMsg{id: id, event: event, line: line}, nil
}

// readTaggedMsgs reads n messages of a following client.
func readTaggedMsgs(t *testing.T, conn *websocket.Conn, n int, timeout time.Duration) []taggedMsg {
	t.Helper()
	var out []taggedMsg
	for _, m := range readLines(t, conn, n, timeout) {
		tm, err := parseTaggedMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tm)
	}
	return out
}

// expectGreetingMsg reads the greeting and checks its event and SEQ.
func expectGreetingMsg(t *testing.T, conn *websocket.Conn, event string, seq int) taggedMsg {
	t.Helper()
	g := readTaggedMsgs(t, conn, 1, 5*time.Second)[0]
	if g.event != event || g.seq() != seq {
		t.Fatalf("greeting %+v, want %s at SEQ %d", g, event, seq)
	}
	return g
}

// checkPositions checks that msgs are lines of epoch, numbered from first
// on, and that each line is its number (the emit script's).
func checkPositions(t *testing.T, what string, msgs []taggedMsg, epoch string, first int) {
	t.Helper()
	for i, m := range msgs {
		if m.event != "" || m.epoch() != epoch || m.seq() != first+i || m.line != strconv.Itoa(first+i) {
			t.Fatalf("%s: message %d is %+v, want line %d at %s:%d", what, i, m, first+i, epoch, first+i)
		}
	}
}

// resumeResult is what testdata/resume_client.py prints.
type resumeResult struct {
	Greeting map[string]string `json:"greeting"`
	IDs      []string          `json:"ids"`
	Lines    []string          `json:"lines"`
}

// runResumeClient runs testdata/resume_client.py against url from
// lastEventID, for count lines.
func runResumeClient(t *testing.T, url, lastEventID string, count int) resumeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/resume_client.py", url, lastEventID, strconv.Itoa(count))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume client: %v\nstderr: %s", err, stderr.String())
	}
	var r resumeResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("resume client printed %q: %v", stdout.String(), err)
	}
	return r
}

func TestResume_ExactContinuationAfterADisconnectForAPythonClient(t *testing.T) {
	t.Parallel()
	requirePythonWebsockets(t)
	g := startGateway(t, "--broadcast", "--replay=100", writeScript(t, emitScript))
	plain := dial(t, g.url("/"))
	send(t, plain, "emit 20")
	checkRun(t, "a client that does not follow positions", readLines(t, plain, 20, 5*time.Second))

	first := runResumeClient(t, g.url("/"), "", 20) // joins: the replay, from just before it
	if first.Greeting["event"] != "joined" || !strings.HasSuffix(first.Greeting["id"], ":0") {
		t.Fatalf("greeting %v, want joined at E:0", first.Greeting)
	}
	epoch, _, _ := strings.Cut(first.Greeting["id"], ":")
	for i, id := range first.IDs {
		if want := fmt.Sprintf("%s:%d", epoch, i+1); id != want || first.Lines[i] != strconv.Itoa(i+1) {
			t.Fatalf("line %d: %s %q, want %s %d", i, id, first.Lines[i], want, i+1)
		}
	}
	// Gone: lines 21 to 30 go by; back from its last id, it gets exactly
	// them and what follows.
	send(t, plain, "emit 10")
	readLines(t, plain, 10, 5*time.Second)
	last := first.IDs[len(first.IDs)-1]
	done := make(chan resumeResult, 1)
	go func() { done <- runResumeClient(t, g.url("/"), last, 15) }()
	time.Sleep(time.Second) // it joins, gets 21 to 30, and waits
	send(t, plain, "emit 5")
	again := <-done
	if again.Greeting["event"] != "joined" || again.Greeting["id"] != last {
		t.Fatalf("greeting %v, want joined at %s", again.Greeting, last)
	}
	for i, id := range again.IDs {
		if want := fmt.Sprintf("%s:%d", epoch, 21+i); id != want || again.Lines[i] != strconv.Itoa(21+i) {
			t.Fatalf("after the reconnect, line %d: %s %q, want %s %d", i, id, again.Lines[i], want, 21+i)
		}
	}
}

func TestResume_ResetBeyondTheReplayAndForAForeignEpochThenTheReplay(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--broadcast", "--replay=10", writeScript(t, emitScript))
	plain := dial(t, g.url("/"))
	send(t, plain, "emit 50")
	readLines(t, plain, 50, 5*time.Second)
	probe := dial(t, g.url("/?last_event_id="))
	epoch := expectGreetingMsg(t, probe, "joined", 40).epoch()
	for what, id := range map[string]string{
		"beyond the replay": epoch + ":12",
		"a foreign epoch":   "forgotten7:45",
	} {
		c := dial(t, g.url("/?last_event_id="+url.QueryEscape(id)))
		if greeting := readTaggedMsgs(t, c, 1, 5*time.Second)[0]; greeting.event != "reset" || greeting.id != epoch+":40" {
			t.Fatalf("%s (%s): %+v, want a reset at %s:40", what, id, greeting, epoch)
		}
		checkPositions(t, what+": the replay", readTaggedMsgs(t, c, 10, 5*time.Second), epoch, 41)
	}
	// A malformed one is refused before anything.
	_, resp, err := websocket.DefaultDialer.Dial(g.url("/?last_event_id=not-a-position"), nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("a malformed last_event_id: %v, %v; want 400", resp, err)
	}
}

func TestResume_OnAnotherInstanceOfTheBus(t *testing.T) {
	redis := testrun.StartRedis(t)
	gs := busInstances(t, 2, redis.URL(), "--replay=100", writeScript(t, emitScript))
	leader := dial(t, gs[0].url("/"))
	waitOneChild(t, gs, 2*time.Second)
	f := dial(t, gs[0].url("/?last_event_id="))
	epoch := expectGreetingMsg(t, f, "joined", 0).epoch()
	send(t, leader, "emit 30")
	msgs := readTaggedMsgs(t, f, 30, 5*time.Second)
	checkPositions(t, "on the leader's instance", msgs, epoch, 1)
	f.Close()
	send(t, leader, "emit 10")
	readLines(t, leader, 40, 5*time.Second)
	g := dial(t, gs[1].url("/?last_event_id="+msgs[len(msgs)-1].id))
	expectGreetingMsg(t, g, "joined", 30)
	checkPositions(t, "on the other instance", readTaggedMsgs(t, g, 10, 5*time.Second), epoch, 31)
	send(t, leader, "emit 5")
	checkPositions(t, "live on the other instance", readTaggedMsgs(t, g, 5, 5*time.Second), epoch, 41)
}

// pacedScript prints "PID N" for N from 1, about 100 lines a second.
const pacedScript = `i=0; while :; do i=$((i+1)); echo "$$ $i"; sleep 0.01; done`

// resumer is a client that follows positions to the end of a test,
// reconnecting to url with its last id whenever its connection ends, and
// checking every message: one greeting per connection, each joined at the
// last id it had; lines numbered one after the other, with no gap and no
// duplicate, across every reconnection.
type resumer struct {
	t    *testing.T
	url  string
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	conn       *websocket.Conn // the current connection
	lastID     string
	lines      int
	reconnects int
	producers  []string // the pid of each line, as the paced script prints it
	byID       map[string]string
	err        error
}

// startResumer starts a resumer on url, stopped at the end of the test.
func startResumer(t *testing.T, url string) *resumer {
	r := &resumer{t: t, url: url, stop: make(chan struct{}), done: make(chan struct{}), byID: map[string]string{}}
	go r.run()
	t.Cleanup(r.halt)
	return r
}

func (r *resumer) halt() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

func (r *resumer) run() {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		if err := r.session(); err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			return
		}
	}
}

// session connects once and reads until the connection ends; an error is
// a broken promise.
func (r *resumer) session() error {
	r.mu.Lock()
	from := r.lastID
	r.mu.Unlock()
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	conn, resp, err := d.Dial(r.url+"?last_event_id="+url.QueryEscape(from), nil)
	if err != nil {
		time.Sleep(100 * time.Millisecond) // a balancer or a bus coming back
		return nil
	}
	resp.Body.Close()
	defer conn.Close()
	r.mu.Lock()
	r.conn = conn
	r.mu.Unlock()
	stopped := context.AfterFunc(stopContext(r.stop), func() { conn.Close() })
	defer stopped()
	greeted := false
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if !greeted {
				time.Sleep(100 * time.Millisecond) // refused (1013): the bus is not back yet
			}
			return nil // closed: 1001, 1012, 1013; it comes back
		}
		m, err := parseTaggedMsg(string(data))
		if err != nil {
			return err
		}
		if !greeted {
			greeted = true
			if m.event == "" {
				return fmt.Errorf("the first message is a line, %+v", m)
			}
			if from != "" && (m.event != "joined" || m.id != from) {
				return fmt.Errorf("back from %s: greeted %+v, want joined at %s", from, m, from)
			}
			r.mu.Lock()
			r.reconnects++
			if from == "" {
				r.lastID = m.id
			}
			r.mu.Unlock()
			continue
		}
		if err := r.take(m); err != nil {
			return err
		}
	}
}

// take checks a line against the last one and keeps it.
func (r *resumer) take(m taggedMsg) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := taggedMsg{id: r.lastID}
	if m.event != "" || m.epoch() != last.epoch() || m.seq() != last.seq()+1 {
		return fmt.Errorf("after %s came %+v: a gap, a duplicate or another history", r.lastID, m)
	}
	r.lastID = m.id
	r.lines++
	r.byID[m.id] = m.line
	pid, _, _ := strings.Cut(m.line, " ")
	if n := len(r.producers); n == 0 || r.producers[n-1] != pid {
		r.producers = append(r.producers, pid)
	}
	return nil
}

// drop closes the current connection, as a network would: the client
// comes back, through the balancer.
func (r *resumer) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close()
	}
}

// state returns how many lines it has, how many connections it made, and
// the first broken promise.
func (r *resumer) state() (lines, connections int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines, r.reconnects, r.err
}

// waitLines waits until the resumer has n more lines than now.
func (r *resumer) waitLines(t *testing.T, n int, within time.Duration) {
	t.Helper()
	start, _, _ := r.state()
	deadline := time.Now().Add(within)
	for {
		lines, conns, err := r.state()
		if err != nil {
			t.Fatalf("a resuming client: %v", err)
		}
		if lines >= start+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a resuming client got %d lines in %v (after %d connections), want %d", lines-start, within, conns, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopContext is a context done when stop is closed.
func stopContext(stop <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stop
		cancel()
	}()
	return ctx
}

// restartAt stops g with SIGTERM and starts the same wsgate again on its
// address, as a rolling restart does.
func restartAt(t *testing.T, g *gatewayProc, args ...string) *gatewayProc {
	t.Helper()
	g.stop(syscall.SIGTERM)
	if code, _ := g.wait(15 * time.Second); code != 0 {
		t.Fatalf("wsgate exited with %d on SIGTERM", code)
	}
	host, port, _ := net.SplitHostPort(g.addr)
	next := launch(t, nil, append([]string{"--port=" + port, "--address=" + host}, args...)...)
	next.addr = g.addr
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(next.logs(), "msg=listening") {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted wsgate does not listen on %s:\n%s", g.addr, next.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return next
}

func TestResume_ARollingRestartOfTwoInstancesBehindHAProxyLosesAndRepeatsNothing(t *testing.T) {
	redis := testrun.StartRedis(t)
	args := []string{"--broadcast", "--bus=" + redis.URL(), "--replay=2000", writeScript(t, pacedScript)}
	gs := []*gatewayProc{startGatewayOnFreePort(t, args...), startGatewayOnFreePort(t, args...)}
	lb := "ws://" + startRoundRobinHAProxy(t, gs) + "/"
	// Four resuming clients, spread over both instances by the balancer:
	// while one instance restarts, the other has clients, and takes the
	// stream over.
	var rs []*resumer
	for range 4 {
		rs = append(rs, startResumer(t, lb))
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range rs {
		r.waitLines(t, 30, 10*time.Second)
	}
	for i := range gs {
		gs[i] = restartAt(t, gs[i], args...)
		time.Sleep(time.Second) // the balancer sees it up (two checks, 200 ms apart)
		for _, r := range rs {  // spread over both again
			r.drop()
			time.Sleep(50 * time.Millisecond)
		}
		for _, r := range rs {
			r.waitLines(t, 50, 15*time.Second)
		}
	}
	ids := map[string]string{}
	for i, r := range rs {
		r.halt()
		lines, conns, err := r.state()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Logf("client %d: %d lines over %d connections, producers %v", i, lines, conns, r.producers)
		if lines < 100 || conns < 2 {
			t.Errorf("client %d: %d lines over %d connections, want at least 100 over 2", i, lines, conns)
		}
		for id, line := range r.byID { // one stream: the same line at each position for all
			if other, ok := ids[id]; ok && other != line {
				t.Fatalf("position %s is %q for one client and %q for another", id, other, line)
			}
			ids[id] = line
		}
	}
}

func TestResume_HelpNamesLastEventIDUnderBroadcastAndSentinelUnderBus(t *testing.T) {
	t.Parallel()
	help, _, _ := runCLI(t, nil, "--help")
	for flag, want := range map[string]string{"--broadcast": "last_event_id", "--bus": "redis+sentinel://"} {
		i := strings.Index(help, "  "+flag)
		if i < 0 {
			t.Fatalf("--help has no %s", flag)
		}
		end := strings.Index(help[i+3:], "\n  --")
		if end < 0 {
			end = len(help) - i - 3
		}
		if text := help[i : i+3+end]; !strings.Contains(text, want) {
			t.Errorf("--help's %s does not name %s:\n%s", flag, want, text)
		}
	}
}
