package e2e

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
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

// Broadcast mode on a bus (--bus, README "More than one machine"): several
// real wsgate instances on one real Redis, which the test starts. These
// tests do not run in parallel: failover is about seconds, and a loaded
// machine would blur them.

// busInstances starts n instances in broadcast mode on the bus at url, each
// with args (the command last).
func busInstances(t *testing.T, n int, url string, args ...string) []*gatewayProc {
	t.Helper()
	var gs []*gatewayProc
	for range n {
		gs = append(gs, startGateway(t, append([]string{"--broadcast", "--bus=" + url}, args...)...))
	}
	return gs
}

// liveChildren returns the children of each instance that are not zombies.
func liveChildren(gs []*gatewayProc) [][]int {
	out := make([][]int, len(gs))
	for _, p := range testrun.Processes() {
		for i, g := range gs {
			if p.PPid == g.pid() && p.State != "Z" {
				out[i] = append(out[i], p.Pid)
			}
		}
	}
	return out
}

// waitOneChild waits until exactly one process runs under all of gs, and
// returns the instance running it and its pid. It fails the test if two
// ever do.
func waitOneChild(t *testing.T, gs []*gatewayProc, within time.Duration) (int, int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		leader, pid, total := -1, 0, 0
		for i, pids := range liveChildren(gs) {
			total += len(pids)
			if len(pids) > 0 {
				leader, pid = i, pids[0]
			}
		}
		switch {
		case total > 1:
			t.Fatalf("%d processes run under the instances: %v", total, liveChildren(gs))
		case total == 1:
			return leader, pid
		case time.Now().After(deadline):
			t.Fatalf("no process runs under the instances within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killGroupAtEnd kills process group pgid when the test ends: a process
// whose wsgate was killed is nobody's to stop.
func killGroupAtEnd(t *testing.T, pgid int) {
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
}

// readLines reads n text messages (within timeout), failing the test on
// anything else.
func readLines(t *testing.T, conn *websocket.Conn, n int, timeout time.Duration) []string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	msgs := make([]string, 0, n)
	for len(msgs) < n {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(msgs), n, err)
		}
		msgs = append(msgs, string(data))
	}
	return msgs
}

// checkRun checks that msgs are numbers from first on, each one more than
// the one before, and returns the first.
func checkRun(t *testing.T, what string, msgs []string) int {
	t.Helper()
	first := -1
	for i, m := range msgs {
		n, err := strconv.Atoi(strings.Fields(m + " x")[0])
		if err != nil {
			t.Fatalf("%s: message %d is %.30q, not a number", what, i, m)
		}
		if i == 0 {
			first = n
		} else if n != first+i {
			t.Fatalf("%s: message %d is %d after %d: a gap or a duplicate", what, i, n, first+i-1)
		}
	}
	return first
}

func TestBus_ThirtyClientsOnThreeInstancesShareOneProcessAndGetEveryLineInOrder(t *testing.T) {
	const lines = 1000
	redis := testrun.StartRedis(t)
	script := writeScript(t, fmt.Sprintf(`read -r go; seq 1 %d; while read -r line; do :; done`, lines))
	gs := busInstances(t, 3, redis.URL(), script)
	conns := make([]*websocket.Conn, 30)
	for i := range conns {
		conns[i] = dial(t, gs[i%3].url("/"))
	}
	leader, _ := waitOneChild(t, gs, 2*time.Second)
	send(t, conns[(leader+1)%3], "go") // from an instance that relays
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for want := 1; want <= lines; want++ {
				_, data, err := c.ReadMessage()
				if err != nil || string(data) != strconv.Itoa(want) {
					t.Errorf("client %d (instance %d): line %d is %q, %v", i, i%3, want, data, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, pid := waitOneChild(t, gs, 0); pid == 0 {
		t.Fatal("no process")
	}
}

func TestBus_InputFromEveryInstanceReachesTheOneStdinWholeAndNeverInterleaved(t *testing.T) {
	const perClient = 40
	redis := testrun.StartRedis(t)
	gs := busInstances(t, 3, redis.URL(), "cat")
	var conns []*websocket.Conn
	for i := range 6 {
		conns = append(conns, dial(t, gs[i%3].url("/")))
	}
	waitOneChild(t, gs, 2*time.Second)
	body := func(client, n int) string { // some over 64 kB
		return strings.Repeat(string(rune('a'+client)), 50+(n%4)*40000)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perClient {
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("%d %d %s", i, n, body(i, n)))); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
			}
		}()
	}
	got := readLines(t, conns[1], len(conns)*perClient, 30*time.Second)
	wg.Wait()
	next := make([]int, len(conns))
	for _, m := range got {
		var i, n int
		if _, err := fmt.Sscanf(m, "%d %d", &i, &n); err != nil || i < 0 || i >= len(conns) {
			t.Fatalf("line %.40q: not a client's", m)
		}
		if want := fmt.Sprintf("%d %d %s", i, n, body(i, n)); m != want {
			t.Fatalf("client %d's message %d reached stdin cut or mixed: %.60q...", i, n, m)
		}
		if n != next[i] {
			t.Fatalf("client %d: message %d after %d", i, n, next[i]-1)
		}
		next[i]++
	}
}

// emitScript prints the next N numbers when told "emit N", at about 1,000
// a second with "flow N".
const emitScript = `n=0
while read -r how count; do
  case $how in
  emit) i=0; while [ $i -lt $count ]; do n=$((n+1)); i=$((i+1)); echo $n; done ;;
  flow) awk -v n=$n -v c=$count 'BEGIN { for (i = 1; i <= c; i++) { print n + i; fflush(); if (i % 10 == 0) system("sleep 0.01") } }'
        n=$((n+count)) ;;
  esac
done`

func TestBus_ReplayOnAnyInstanceThenLiveWithNoGapOrDuplicate(t *testing.T) {
	redis := testrun.StartRedis(t)
	gs := busInstances(t, 3, redis.URL(), "--replay=10", writeScript(t, emitScript))
	a := dial(t, gs[0].url("/"))
	waitOneChild(t, gs, 2*time.Second)
	send(t, a, "emit 25")
	checkRun(t, "first client", readLines(t, a, 25, 5*time.Second))
	printed := 25

	// On each instance: the last 10, then what follows.
	for _, g := range gs {
		b := dial(t, g.url("/"))
		replay := readLines(t, b, 10, 5*time.Second)
		if first := checkRun(t, "replay", replay); first != printed-9 {
			t.Fatalf("the replay starts at %d, want %d", first, printed-9)
		}
		send(t, a, "emit 5")
		printed += 5
		checkRun(t, "replay then live", append(replay, readLines(t, b, 5, 5*time.Second)...))
		readLines(t, a, 5, 5*time.Second)
		b.Close()
	}

	// While lines flow: clients join on every instance; each gets a run
	// with no gap and no duplicate, from the replay into the live lines.
	send(t, a, "flow 1500")
	last := strconv.Itoa(printed + 1500)
	var wg sync.WaitGroup
	for i := range 6 {
		time.Sleep(150 * time.Millisecond)
		c := dial(t, gs[i%3].url("/"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			var msgs []string
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					t.Errorf("joiner %d: %v", i, err)
					return
				}
				msgs = append(msgs, string(data))
				if string(data) == last {
					break
				}
			}
			checkRun(t, fmt.Sprintf("joiner %d on instance %d", i, i%3), msgs)
		}()
	}
	wg.Wait()
}

func TestBus_TheProcessStopsOnlyWhenTheLastClientOnEveryInstanceHasLeftAndItsExitClosesEveryone(t *testing.T) {
	const linger = 500 * time.Millisecond
	redis := testrun.StartRedis(t)
	script := writeScript(t, `echo "pid $$"; while read -r line; do case $line in exit*) exit ${line#exit };; esac; echo "$line"; done`)
	gs := busInstances(t, 3, redis.URL(), "--lingerms=500", script)

	// The last client on every instance.
	var conns []*websocket.Conn
	for i := range 6 {
		conns = append(conns, dial(t, gs[i%3].url("/?topic=a")))
	}
	leader, pid := waitOneChild(t, gs, 2*time.Second)
	for i, c := range conns {
		if i%3 != (leader+2)%3 {
			c.Close() // every client but those of one relay
		}
	}
	time.Sleep(linger + 2*time.Second)
	if len(testrun.GroupMembers(pid)) == 0 {
		t.Fatal("the process stopped while an instance still had clients")
	}
	left := time.Now()
	for i, c := range conns {
		if i%3 == (leader+2)%3 {
			c.Close()
		}
	}
	waitGroupGone(t, pid, linger+5*time.Second)
	if d := time.Since(left); d < linger {
		t.Errorf("the process stopped %v after the last client left, before --lingerms", d)
	} else {
		t.Logf("the process stopped %v after the last client left", d.Round(time.Millisecond))
	}

	// Its exit closes every client on every instance with its code.
	conns = conns[:0]
	for i := range 6 {
		conns = append(conns, dial(t, gs[i%3].url("/?topic=b")))
	}
	waitOneChild(t, gs, 2*time.Second)
	send(t, conns[4], "exit 3")
	for i, c := range conns {
		msgs, ce, err := readUntilClose(c, 5*time.Second)
		if err != nil || ce.Code != websocket.CloseInternalServerErr || ce.Text != "exit status 3" {
			t.Errorf("client %d (instance %d): close %v, %v, want 1011 exit status 3 (after %q)", i, i%3, ce, err, msgs)
		}
	}
}

func TestBus_KillingTheInstanceThatRunsTheProcessMovesItToAnotherWithin5s(t *testing.T) {
	redis := testrun.StartRedis(t)
	script := writeScript(t, `echo "pid $$"; while :; do echo "tick $$"; sleep 0.1; done`)
	gs := busInstances(t, 3, redis.URL(), "--replay=5", script)
	c0 := dial(t, gs[0].url("/"))
	leader, oldPid := waitOneChild(t, gs, 2*time.Second)
	killGroupAtEnd(t, oldPid)
	if leader != 0 {
		t.Fatalf("instance %d runs the process, want the first client's", leader)
	}
	c1, c2 := dial(t, gs[1].url("/")), dial(t, gs[2].url("/"))
	for _, c := range []*websocket.Conn{c1, c2} {
		readLines(t, c, 3, 5*time.Second)
	}

	gs[0].cmd.Process.Kill() // SIGKILL: no goodbye, the lease is left to expire
	killed := time.Now()
	newPid := ""
	for i, c := range []*websocket.Conn{c1, c2} {
		_ = c.SetReadDeadline(killed.Add(5 * time.Second))
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("client on instance %d: no new process within 5 s of the kill: %v", i+1, err)
			}
			if pid, ok := strings.CutPrefix(string(data), "pid "); ok {
				if newPid != "" && pid != newPid {
					t.Fatalf("clients see processes %s and %s", newPid, pid)
				}
				newPid = pid
				break
			}
		}
		t.Logf("client on instance %d got the new process's first line %v after the kill", i+1, time.Since(killed).Round(time.Millisecond))
	}
	if newPid == strconv.Itoa(oldPid) {
		t.Fatal("the new process has the old one's pid")
	}
	if _, pid := waitOneChild(t, gs[1:], 0); strconv.Itoa(pid) != newPid {
		t.Fatalf("process %d runs, clients see %s", pid, newPid)
	}
	for _, c := range []*websocket.Conn{c1, c2} {
		if got := readLines(t, c, 2, 5*time.Second); got[1] != "tick "+newPid {
			t.Fatalf("after the new pid, %q", got)
		}
	}
	// The dead instance's client lost its connection, with no close frame.
	if _, ce, err := readUntilClose(c0, 5*time.Second); err == nil && ce.Code != websocket.CloseAbnormalClosure {
		t.Errorf("the dead instance's client got a close frame %v", ce)
	}
}

func TestBus_RedisRestartCloses1012EverywhereStopsTheProcessAndInstancesRecoverByThemselves(t *testing.T) {
	redis := testrun.StartRedis(t)
	script := writeScript(t, `echo "pid $$"; while read -r line; do echo "$line"; done`)
	gs := busInstances(t, 2, redis.URL(), script)
	var conns []*websocket.Conn
	for i := range 4 {
		conns = append(conns, dial(t, gs[i%2].url("/")))
	}
	_, pid := waitOneChild(t, gs, 2*time.Second)
	redis.Kill()
	for i, c := range conns {
		_, ce, err := readUntilClose(c, 5*time.Second)
		if err != nil || ce.Code != websocket.CloseServiceRestart || ce.Text != "service restart" {
			t.Errorf("client %d: close %v, %v, want 1012 service restart", i, ce, err)
		}
	}
	waitGroupGone(t, pid, 3*time.Second)
	for _, g := range gs {
		c := dial(t, g.url("/"))
		if _, ce, err := readUntilClose(c, 5*time.Second); err != nil || ce.Code != websocket.CloseTryAgainLater || ce.Text != "bus unavailable" {
			t.Errorf("a client while Redis is down: close %v, %v, want 1013 bus unavailable", ce, err)
		}
	}

	redis.Start()
	for _, g := range gs {
		g.waitLog(10*time.Second, "bus reachable again", nil)
	}
	c := dial(t, gs[1].url("/"))
	if got := readLines(t, c, 1, 5*time.Second)[0]; !strings.HasPrefix(got, "pid ") {
		t.Fatalf("after Redis's return, a new client got %q", got)
	}
	d := dial(t, gs[0].url("/"))
	send(t, d, "both")
	for _, conn := range []*websocket.Conn{c, d} {
		got := readLines(t, conn, 1, 5*time.Second)[0]
		if conn == d && strings.HasPrefix(got, "pid ") {
			// The leader hands a line to its own clients before it
			// publishes it: one that joins another instance just after
			// may get it too.
			got = readLines(t, conn, 1, 5*time.Second)[0]
		}
		if got != "both" {
			t.Fatalf("got %q", got)
		}
	}
	for _, g := range gs {
		if !g.logsSay("bus unreachable; retrying", 10*time.Second) {
			t.Errorf("instance's log does not say the bus was lost")
		}
		g.stop(syscall.SIGTERM)
	}
	for _, g := range gs {
		if code, _ := g.wait(10 * time.Second); code != 0 {
			t.Errorf("instance exited with %d after SIGTERM", code)
		}
	}
	if left := liveChildren(gs); slices.ContainsFunc(left, func(p []int) bool { return len(p) > 0 }) {
		t.Errorf("processes left: %v", left)
	}
}

func TestBus_A1013IsPerClientAndAStoppedInstanceHoldsNoOneBack(t *testing.T) {
	// Redis cuts off a subscriber 1 MB behind; the producer writes lines of
	// 1 kB as fast as it can, pausing 10 ms every 50.
	redis := testrun.StartRedis(t, "--client-output-buffer-limit", "pubsub 1mb 512kb 1")
	script := writeScript(t, `exec awk 'BEGIN { p = sprintf("%990s", ""); gsub(/ /, "x", p);
		for (i = 1; ; i++) { printf "%d %s\n", i, p; if (i % 50 == 0) { fflush(); system("sleep 0.01") } } }'`)
	gs := busInstances(t, 3, redis.URL(), "--queue=2048", script)
	local := startReading(t, dial(t, gs[0].url("/")))
	waitOneChild(t, gs, 2*time.Second)
	silent := dial(t, gs[1].url("/")) // reads nothing: 1013
	fast := startReading(t, dial(t, gs[1].url("/")))
	stopped := startReading(t, dial(t, gs[2].url("/"))) // its instance will be stopped

	// The silent client is closed; the others, on its instance and on the
	// leader's, keep up.
	gs[1].waitLog(60*time.Second, "client too slow; closing", nil)
	msgs, ce, err := readUntilClose(silent, 10*time.Second)
	if err != nil || ce.Code != websocket.CloseTryAgainLater || ce.Text != "client too slow" {
		t.Fatalf("the silent client: close %v, %v, want 1013 client too slow", ce, err)
	}
	if len(msgs) > 0 {
		checkRun(t, "the silent client, before its 1013", msgs)
	}

	// An instance that stops reading holds back neither the process nor
	// the other instances. Some 3 MB/s for 6 s is far more than the socket
	// buffers and Redis's 1 MB limit hold: Redis cuts the instance off, and
	// its client, reading all along, gets what it had with no gap, then
	// 1012 (or 1013, if the backlog it then got at once overflowed its
	// queue).
	before := fast.rate(2 * time.Second)
	gs[2].stop(syscall.SIGSTOP)
	during := fast.rate(6 * time.Second)
	gs[2].stop(syscall.SIGCONT)
	t.Logf("a client on another instance got %.0f lines/s before the stop, %.0f during it", before, during)
	// Held back, the stream would stall once the buffers filled, within the
	// first second: a tenth of the rate before. A busy machine's own swings
	// (measured: 2.4x at a load average of 27) stay well above that.
	if during < before/10 {
		t.Errorf("%.0f lines/s while an instance was stopped, %.0f before: held back", during, before)
	}
	select {
	case <-stopped.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the stopped instance's client still reads 30 s after: its instance was not cut off (%d lines)", stopped.lines.Load())
	}
	var closed *websocket.CloseError
	if !errors.As(stopped.err, &closed) || (closed.Code != websocket.CloseServiceRestart && closed.Code != websocket.CloseTryAgainLater) {
		t.Fatalf("the stopped instance's client: %v, want close 1012 or 1013 after a gap-free run (%d lines)", stopped.err, stopped.lines.Load())
	}
	t.Logf("the stopped instance's client got %d lines, then %v", stopped.lines.Load(), closed)
	if closed.Code == websocket.CloseServiceRestart && !gs[2].logsSay("bus link failed", 10*time.Second) {
		t.Error("the stopped instance does not log why its stream ended")
	}
	// Why, in Redis's terms: it cut the subscription off.
	if closed.Code == websocket.CloseServiceRestart && !gs[2].logsSay("client-output-buffer-limit", 10*time.Second) {
		t.Errorf("the stopped instance does not say Redis cut it off:\n%s", gs[2].logs())
	}
	if strings.Contains(gs[2].logs(), "can't parse") {
		t.Errorf("a Redis error reads as a parse error:\n%s", gs[2].logs())
	}
	for name, r := range map[string]*reading{"on the leader's instance": local, "on the silent one's": fast} {
		if err := r.stop(); err != nil {
			t.Errorf("the reading client %s: %v", name, err)
		}
	}
}

// reading is a client read to the end on a goroutine of its own, each
// message checked to be the next number.
type reading struct {
	conn  *websocket.Conn
	lines atomic.Int64
	done  chan struct{}
	err   error // once done is closed
}

// startReading reads conn until it fails or stop is called.
func startReading(t *testing.T, conn *websocket.Conn) *reading {
	r := &reading{conn: conn, done: make(chan struct{})}
	go r.read()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func (r *reading) read() {
	defer close(r.done)
	want := -1
	for {
		_, data, err := r.conn.ReadMessage()
		if err != nil {
			r.err = err
			return
		}
		n, err := strconv.Atoi(strings.Fields(string(data) + " x")[0])
		if err != nil || (want >= 0 && n != want) {
			r.err = fmt.Errorf("line %.20q after %d: a gap or a duplicate", data, want-1)
			return
		}
		want = n + 1
		r.lines.Add(1)
	}
}

// rate returns the lines a second read over d; it fails the reading early
// if reading failed.
func (r *reading) rate(d time.Duration) float64 {
	start, n0 := time.Now(), r.lines.Load()
	select {
	case <-r.done:
	case <-time.After(d):
	}
	return float64(r.lines.Load()-n0) / time.Since(start).Seconds()
}

// stop ends the reading and returns why it had ended, if it had.
func (r *reading) stop() error {
	select {
	case <-r.done:
		return r.err
	default:
	}
	_ = r.conn.SetReadDeadline(time.Now())
	<-r.done
	return nil
}

// haproxyRoundRobin is a round-robin HAProxy in front of wsgate instances:
// a TCP check every 200 ms marks a dead one down at the first failure, and a
// connection that fails is tried again on another.
const haproxyRoundRobin = `global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h
    option redispatch
    retries 3
frontend ws
    bind %s
    default_backend wsgate
backend wsgate
    balance roundrobin
    default-server check inter 200ms fall 1 rise 2
%s`

// startRoundRobinHAProxy runs HAProxy round-robin in front of gs, and
// returns its address. HAProxy is stopped at the end of the test.
func startRoundRobinHAProxy(t *testing.T, gs []*gatewayProc) string {
	t.Helper()
	haproxy := requireTool(t, "haproxy")
	var servers strings.Builder
	for i, g := range gs {
		fmt.Fprintf(&servers, "    server wsgate%d %s\n", i, g.addr)
	}
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	writeFile(t, path, fmt.Sprintf(haproxyRoundRobin, addr, servers.String()))
	return runProxy(t, addr, haproxy, "-db", "-f", path).addr
}

// dialRetry dials url until it succeeds, within timeout: a client
// reconnecting through a load balancer.
func dialRetry(t *testing.T, url string, timeout time.Duration) *websocket.Conn {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := websocket.Dialer{HandshakeTimeout: time.Second}
		conn, resp, err := d.Dial(url, nil)
		if err == nil {
			resp.Body.Close()
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBus_BehindHAProxyRoundRobinClientsShareOneProcessAndReconnectWhenAnInstanceDies(t *testing.T) {
	redis := testrun.StartRedis(t)
	script := writeScript(t, `(while :; do echo "tick $$"; sleep 0.1; done) &
while read -r line; do echo "echo $line"; done`)
	gs := busInstances(t, 3, redis.URL(), "--loglevel=trace", script)
	lb := "ws://" + startRoundRobinHAProxy(t, gs) + "/"

	conns := make([]*websocket.Conn, 12)
	for i := range conns {
		conns[i] = dial(t, lb)
	}
	for i, g := range gs { // round robin: 4 each
		g.waitLog(5*time.Second, "session started", func(map[string]string) bool {
			return len(logLines(g.logs(), "session started")) >= 4
		})
		if n := len(logLines(g.logs(), "session started")); n != 4 {
			t.Errorf("instance %d has %d of the 12 clients", i, n)
		}
	}
	leader, pid := waitOneChild(t, gs, 2*time.Second)
	killGroupAtEnd(t, pid)
	send(t, conns[1], "through the balancer")
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if string(data) == "echo through the balancer" {
				break
			}
			if string(data) != fmt.Sprintf("tick %d", pid) {
				t.Fatalf("client %d got %q from another process than %d", i, data, pid)
			}
		}
	}

	// The instance running the process dies: its clients reconnect through
	// the balancer to the others, where a new process runs.
	gs[leader].cmd.Process.Kill()
	var lost []int
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				lost = append(lost, i)
				break
			}
			if strings.HasPrefix(string(data), "tick ") && string(data) != fmt.Sprintf("tick %d", pid) {
				break // the new process's
			}
		}
	}
	if len(lost) != 4 {
		t.Errorf("%d clients lost their connection, want the dead instance's 4", len(lost))
	}
	for _, i := range lost {
		conns[i] = dialRetry(t, lb, 5*time.Second)
	}
	_, newPid := waitOneChild(t, gs, 5*time.Second)
	killGroupAtEnd(t, newPid)
	send(t, conns[lost[0]], "after the failover")
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("client %d after the failover: %v", i, err)
			}
			if string(data) == "echo after the failover" {
				break
			}
		}
	}
}

func TestBus_RedissWithAPasswordWorksAndThePasswordIsNeverShown(t *testing.T) {
	const secret = "bus-pw-8c1d2f"
	pki := newTestPKI(t)
	redis := testrun.StartRedisTLS(t, pki.serverCert, pki.serverKey, pki.caFile, "--requirepass", secret)
	url := "rediss://:" + secret + "@" + redis.Addr() + "/2"
	env := []string{"SSL_CERT_FILE=" + pki.caFile} // trust the test's CA
	a := startGatewayEnv(t, env, "--broadcast", "--bus="+url, "cat")
	b := startGatewayEnv(t, append(env, "WSGATE_BUS="+url), "--broadcast", "cat")
	ca, cb := dial(t, a.url("/")), dial(t, b.url("/"))
	waitOneChild(t, []*gatewayProc{a, b}, 2*time.Second)
	send(t, cb, "over TLS")
	for _, c := range []*websocket.Conn{ca, cb} {
		if got := receive(t, c); got != "over TLS" {
			t.Fatalf("got %q", got)
		}
	}

	// A wrong password ends the start-up, in one line that names --bus
	// and says why, without the password.
	_, wrong, code := runCLI(t, env, "--broadcast", "--bus=rediss://:not-"+secret+"@"+redis.Addr()+"/2", "cat")
	if code != exitBadUsage || !strings.HasPrefix(wrong, "wsgate: --bus=rediss://:xxxxx@") || !strings.Contains(wrong, "WRONGPASS") {
		t.Errorf("a wrong password: exit %d, %q; want %d and one line naming --bus and WRONGPASS", code, wrong, exitBadUsage)
	}

	help, _, _ := runCLI(t, []string{"WSGATE_BUS=" + url}, "--help")
	_, usage, _ := runCLI(t, nil, "--broadcast", "--bus=redis://:"+secret+"@127.0.0.1:notaport/0", "cat")
	if !strings.Contains(usage, "--bus") {
		t.Errorf("a bad bus URL's error does not name --bus: %q", usage)
	}
	for what, text := range map[string]string{
		"a's log": a.logs(), "b's log": b.logs(), "the wrong password's error": wrong,
		"--help": help, "the bad URL's error": usage,
	} {
		if strings.Contains(text, secret) {
			t.Errorf("the password shows in %s:\n%s", what, text)
		}
	}
	if !strings.Contains(a.logs(), "rediss://:xxxxx@"+redis.Addr()+"/2") {
		t.Errorf("the serving line does not name the bus, redacted:\n%s", a.logs())
	}
}

func TestBus_FlagNeedsBroadcastAndARedisURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bus=redis://127.0.0.1:6379/0", "cat"}, "--replay, --lingerms and --bus need --broadcast"},
		{[]string{"--broadcast", "--bus=http://127.0.0.1:6379/0", "cat"}, "--bus=http://127.0.0.1:6379/0: want redis:// or rediss://"},
		{[]string{"--broadcast", "--bus=redis://127.0.0.1:6379/zero", "cat"}, "--bus=redis://127.0.0.1:6379/zero: redis: invalid database number"},
	} {
		_, stderr, code := runCLI(t, nil, c.args...)
		if code != exitBadUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("wsgate %q: exit %d, %q; want %d and %q", c.args, code, stderr, exitBadUsage, c.want)
		}
	}
}
