package gateway

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/internal/testrun"
	"github.com/wsgate/wsgate/redisbus"
)

// Broadcast mode on a bus, with several gateways in this test process, each
// with a bus of its own on one real Redis: as many instances would be. These
// tests do not run in parallel: each runs a Redis and several gateways, and
// running them before the parallel tests keeps their load off the tests that
// measure timings.

// busGateways serves cfg in broadcast mode from n gateways on one bus, a
// Redis of the test's own.
func busGateways(t *testing.T, n int, cfg Config) ([]*testGateway, *testrun.Redis) {
	t.Helper()
	srv := testrun.StartRedis(t)
	return busGatewaysOn(t, srv.URL(), n, cfg), srv
}

// busGatewaysOn is busGateways on the Redis at url.
func busGatewaysOn(t *testing.T, url string, n int, cfg Config) []*testGateway {
	t.Helper()
	var tgs []*testGateway
	for range n {
		logged := &syncBuffer{}
		logger, _ := logs.New(logged, "text", logs.LevelDebug)
		bus, err := redisbus.New(redisbus.Options{URL: url, Replay: cfg.Replay, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // after the gateway's shutdown, registered below
			_ = bus.Close()
			if t.Failed() {
				t.Logf("bus %s log:\n%s", bus.ID(), logged.String())
			}
		})
		c := cfg
		c.Broadcast, c.Bus = true, bus
		tgs = append(tgs, newTestGateway(t, c))
	}
	return tgs
}

// leaders returns the indexes of the gateways running the process of the
// stream key.
func leaders(tgs []*testGateway, key string) []int {
	var found []int
	for i, tg := range tgs {
		tg.gw.shared.mu.Lock()
		st := tg.gw.shared.streams[key]
		tg.gw.shared.mu.Unlock()
		if st != nil && st.leader.Load() != nil {
			found = append(found, i)
		}
	}
	return found
}

// waitLeader waits until one gateway runs the process of key, and returns
// it.
func waitLeader(t *testing.T, tgs []*testGateway, key string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		switch l := leaders(tgs, key); {
		case len(l) == 1:
			return l[0]
		case len(l) > 1:
			t.Fatalf("gateways %v all run the process of %s", l, key)
		case time.Now().After(deadline):
			t.Fatalf("no gateway runs the process of %s within %v", key, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBusClientsOnThreeInstancesShareOneProcessAndGetEveryLineInOrder(t *testing.T) {
	const lines = 3000
	cfg := script(t, "read -r go; echo $$; seq 1 "+itoa(lines)+"; while read -r line; do :; done")
	cfg.QueueSize = 2 * lines // this test is about order, not slowness
	tgs, _ := busGateways(t, 3, cfg)
	var conns []*websocket.Conn
	for i := range 9 {
		conns = append(conns, tgs[i%3].dial(t, "/", nil))
	}
	waitLeader(t, tgs, "/?", time.Second)
	send(t, conns[4], websocket.TextMessage, "go")
	pid := ""
	for i, c := range conns {
		got := readMessageText(t, c)
		if pid == "" {
			pid = got
		} else if got != pid {
			t.Fatalf("client %d has process %s, client 0 has %s: two processes", i, got, pid)
		}
		if first := assertConsecutive(t, readN(t, c, lines)); first != 1 {
			t.Fatalf("client %d: lines start at %d", i, first)
		}
	}
	if l := leaders(tgs, "/?"); len(l) != 1 {
		t.Errorf("gateways %v run the process", l)
	}
}

func TestBusFirstClientsMessageReachesTheProcessItStarts(t *testing.T) {
	tgs, _ := busGateways(t, 2, script(t, `while read -r line; do echo "got $line"; done`))
	for i, tg := range tgs { // the first client of each stream, on each instance
		c := tg.dial(t, "/?room="+itoa(i), nil)
		send(t, c, websocket.TextMessage, "hello")
		if got := readMessageText(t, c); got != "got hello" {
			t.Fatalf("first client got %q", got)
		}
	}
}

func TestBusInputFromEveryInstanceReachesStdinWholeInEachClientsOrder(t *testing.T) {
	const perClient = 30
	tgs, _ := busGateways(t, 3, command(t, "cat"))
	var conns []*websocket.Conn
	for i := range 6 {
		conns = append(conns, tgs[i%3].dial(t, "/", nil))
	}
	waitLeader(t, tgs, "/?", time.Second)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				// Some messages over 64 kB, streamed to stdin without a bus.
				size := 100 + (j%3)*40000
				msg := itoa(i) + " " + itoa(j) + " " + strings.Repeat(string(rune('a'+i)), size)
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	msgs := readN(t, conns[0], len(conns)*perClient)
	next := map[string]int{}
	for _, m := range msgs {
		f := strings.SplitN(m, " ", 3)
		i, j := atoi(t, f[0]), atoi(t, f[1])
		if f[2] != strings.Repeat(string(rune('a'+i)), 100+(j%3)*40000) {
			t.Fatalf("message %s %s is not whole: %.60q...", f[0], f[1], f[2])
		}
		if j != next[f[0]] {
			t.Fatalf("client %s: message %d after %d", f[0], j, next[f[0]]-1)
		}
		next[f[0]]++
	}
}

func TestBusReplayOnAnotherInstanceThenLiveHasNoGapOrDuplicate(t *testing.T) {
	cfg := script(t, `i=0; while :; do i=$((i+1)); echo $i; sleep 0.002; done`)
	cfg.Replay = 20
	tgs, _ := busGateways(t, 3, cfg)
	first := tgs[0].dial(t, "/", nil)
	readN(t, first, 50)
	for i := range 6 {
		late := tgs[1+i%2].dial(t, "/", nil)
		msgs := readN(t, late, 100)
		if n := assertConsecutive(t, msgs); n < 30 {
			t.Errorf("a late client starts at line %d, before the replay could", n)
		}
		late.Close()
	}
}

func TestBusProcessStopsOnlyWhenTheLastClientOnEveryInstanceHasLeft(t *testing.T) {
	cfg := script(t, `echo $$; while read -r line; do echo "$line"; done`)
	cfg.Linger = 300 * time.Millisecond
	tgs, _ := busGateways(t, 2, cfg)
	a := tgs[0].dial(t, "/", nil) // starts the process, on instance 0
	pid := readPid(t, a)
	b := tgs[1].dial(t, "/", nil)
	waitLeader(t, tgs, "/?", time.Second)
	a.Close()
	time.Sleep(cfg.Linger + time.Second) // instance 1 still has b
	if len(groupMembers(pid)) == 0 {
		t.Fatal("the process stopped while a client on another instance remained")
	}
	send(t, b, websocket.TextMessage, "still here")
	got := readMessageText(t, b)
	if got == strconv.Itoa(pid) {
		// Printed as b joined: through Redis it can reach instance 1
		// after b did, and then b is owed it too.
		got = readMessageText(t, b)
	}
	if got != "still here" {
		t.Fatalf("got %q", got)
	}
	left := time.Now()
	b.Close()
	waitGroupGone(t, pid, cfg.Linger+3*time.Second)
	if d := time.Since(left); d < cfg.Linger {
		t.Errorf("the process stopped %v after the last client left, before the linger", d)
	}
}

func TestBusProcessExitClosesEveryClientOnEveryInstanceWithItsCode(t *testing.T) {
	tgs, _ := busGateways(t, 3, script(t, `read -r code; echo bye; exit $code`))
	var conns []*websocket.Conn
	for i := range 6 {
		conns = append(conns, tgs[i%3].dial(t, "/", nil))
	}
	waitLeader(t, tgs, "/?", time.Second)
	send(t, conns[5], websocket.TextMessage, "3")
	for i, c := range conns {
		msgs, ce := readUntilClose(t, c, 5*time.Second)
		if len(msgs) != 1 || msgs[0] != "bye" {
			t.Errorf("client %d got %q before the close", i, msgs)
		}
		assertClose(t, ce, websocket.CloseInternalServerErr, "exit status 3")
	}
	// The next client starts a new process.
	c := tgs[1].dial(t, "/", nil)
	send(t, c, websocket.TextMessage, "0")
	msgs, ce := readUntilClose(t, c, 5*time.Second)
	if len(msgs) != 1 {
		t.Errorf("the next client got %q", msgs)
	}
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
}

func TestBusLeaderShuttingDownHandsTheStreamOverAndOtherClientsStay(t *testing.T) {
	tgs, _ := busGateways(t, 2, script(t, `echo "pid $$"; while read -r line; do echo "$$ $line"; done`))
	a := tgs[0].dial(t, "/", nil)
	old := readMessageText(t, a)
	b := tgs[1].dial(t, "/", nil)
	if err := tgs[0].gw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, ce := readUntilClose(t, a, 3*time.Second)
	assertClose(t, ce, websocket.CloseGoingAway, "server shutting down")
	waitLeader(t, tgs[1:], "/?", 2*time.Second)
	newer := readMessageText(t, b)
	if newer == old {
		// The old leader handed its first line to a before it published
		// it: b, joining in between, got it from the bus.
		newer = readMessageText(t, b)
	}
	if !strings.HasPrefix(newer, "pid ") || newer == old {
		t.Fatalf("after the handover the client got %q, want the new process's pid (the old one's: %q)", newer, old)
	}
	send(t, b, websocket.TextMessage, "hi")
	if got := readMessageText(t, b); got != strings.TrimPrefix(newer, "pid ")+" hi" {
		t.Fatalf("got %q from the new process", got)
	}
}

func TestBusRedisLostCloses1012AndNewClientsAreServedOnceItIsBack(t *testing.T) {
	tgs, srv := busGateways(t, 2, script(t, `echo $$; while read -r line; do echo "$line"; done`))
	a := tgs[0].dial(t, "/", nil)
	pid := readPid(t, a)
	b := tgs[1].dial(t, "/", nil)
	srv.Kill()
	for _, c := range []*websocket.Conn{a, b} {
		_, ce := readUntilClose(t, c, 5*time.Second)
		assertClose(t, ce, websocket.CloseServiceRestart, "service restart")
	}
	waitGroupGone(t, pid, 3*time.Second)
	_, ce := readUntilClose(t, tgs[1].dial(t, "/", nil), 5*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "bus unavailable")

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := tgs[1].dial(t, "/", nil)
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, data, err := c.ReadMessage()
		if err == nil {
			t.Logf("served again: process %s", data)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client served within 10 s of Redis's return: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBusALineTooLongClosesEveryClientOnEveryInstanceWith1009(t *testing.T) {
	cfg := script(t, `read -r go; echo short; head -c 3000 /dev/zero | tr '\0' x; echo; sleep 5`)
	cfg.MaxLineSize = 1000
	tgs, _ := busGateways(t, 2, cfg)
	a, b := tgs[0].dial(t, "/", nil), tgs[1].dial(t, "/", nil)
	waitLeader(t, tgs, "/?", time.Second)
	send(t, b, websocket.TextMessage, "go")
	for _, c := range []*websocket.Conn{a, b} {
		msgs, ce := readUntilClose(t, c, 5*time.Second)
		if len(msgs) != 1 || msgs[0] != "short" {
			t.Errorf("got %q before the close", msgs)
		}
		assertClose(t, ce, websocket.CloseMessageTooBig, "output line too long")
	}
}

func TestBusSlowClientOnARelayIsClosed1013AndHoldsNoOneBack(t *testing.T) {
	cfg := script(t, ackPacedLinesScript)
	cfg.QueueSize = 256
	tgs, _ := busGateways(t, 2, cfg)
	local := tgs[0].dial(t, "/", nil)
	waitLeader(t, tgs, "/?", time.Second)
	slow := tgs[1].dial(t, "/", nil)
	fast := tgs[1].dial(t, "/", nil)
	send(t, fast, websocket.TextMessage, "go")
	// The slow client reads nothing until its queue has overflowed; the
	// fast ones, on its instance and on the leader's, keep reading, and set
	// the pace.
	var got, gotLocal []string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(tgs[1].logs.String(), "client too slow") {
		if time.Now().After(deadline) {
			t.Fatal("the silent client was not closed as too slow")
		}
		chunks := readChunk(t, fast, local)
		got = append(got, chunks[0]...)
		gotLocal = append(gotLocal, chunks[1]...)
	}
	assertConsecutive(t, got)
	assertConsecutive(t, gotLocal)
	msgs, ce := readUntilClose(t, slow, 10*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "client too slow")
	if len(msgs) > 0 {
		assertConsecutive(t, msgs)
	}
	assertConsecutive(t, readChunk(t, fast)[0][:1]) // still served
}

func TestBusUnreachableRefusesWith1013(t *testing.T) {
	srv := testrun.StartRedis(t)
	url := srv.URL()
	srv.Kill()
	tgs := busGatewaysOn(t, url, 1, command(t, "cat"))
	_, ce := readUntilClose(t, tgs[0].dial(t, "/", nil), 5*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "bus unavailable")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("%q is not a number", s)
		}
		n = 10*n + int(r-'0')
	}
	return n
}

func TestBusUnderCompressEveryInstanceCompressesForItsOwnMembers(t *testing.T) {
	lines := compressibleOutput()
	file := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	payload := 0
	for _, l := range lines {
		payload += len(l)
	}
	cfg := script(t, "read -r go; cat "+file+"; while read -r line; do :; done")
	cfg.Compress = true
	tgs, _ := busGateways(t, 2, cfg)
	local, _, localWire := tgs[0].dialCounting(t, "/", true)
	waitLeader(t, tgs, "/?", time.Second)
	relayed, _, relayedWire := tgs[1].dialCounting(t, "/", true)
	send(t, relayed, websocket.TextMessage, "go")
	for name, c := range map[string]*websocket.Conn{"local": local, "relayed": relayed} {
		got := readN(t, c, len(lines))
		for i := range lines {
			if got[i] != lines[i] {
				t.Fatalf("%s client: message %d is %.40q..., want %.40q...", name, i, got[i], lines[i])
			}
		}
	}
	for name, n := range map[string]int64{"local": localWire.read.Load(), "relayed": relayedWire.read.Load()} {
		t.Logf("%s client: %d payload bytes took %d on the wire", name, payload, n)
		if n > int64(payload/3) {
			t.Errorf("%s client: %d bytes on the wire for %d of payload: not compressed", name, n, payload)
		}
	}
}

// TestEveryBusEndsAStreamWithItsCodeAndStopsItsProcessWhenTheLastLeaves
// runs one scenario through the hub on the in-process bus (no Config.Bus)
// and on Redis: the same path serves both.
func TestEveryBusEndsAStreamWithItsCodeAndStopsItsProcessWhenTheLastLeaves(t *testing.T) {
	srv := testrun.StartRedis(t)
	buses := []struct {
		name    string
		gateway func(t *testing.T, cfg Config) *testGateway
	}{
		{"local", func(t *testing.T, cfg Config) *testGateway {
			cfg.Broadcast = true
			tg := newTestGateway(t, cfg)
			if _, ok := tg.gw.cfg.Bus.(broadcast.Local); !ok {
				t.Fatalf("without a bus the gateway uses %T, want broadcast.Local", tg.gw.cfg.Bus)
			}
			return tg
		}},
		{"redis", func(t *testing.T, cfg Config) *testGateway { return busGatewaysOn(t, srv.URL(), 1, cfg)[0] }},
	}
	n := 0
	for _, bus := range buses {
		for _, linger := range []time.Duration{0, 300 * time.Millisecond} {
			n++
			path := "/?case=" + itoa(n)
			t.Run(bus.name+"/linger="+linger.String(), func(t *testing.T) {
				cfg := script(t, `echo $$; while read -r line; do case $line in exit*) exit ${line#exit };; esac; echo "$line"; done`)
				cfg.Linger = linger
				tg := bus.gateway(t, cfg)
				endsWithItsCode(t, tg, path)
				stopsWhenTheLastLeaves(t, tg, path, linger)
			})
		}
	}
}

// endsWithItsCode checks that the exit of a stream's process closes every
// member with its close code.
func endsWithItsCode(t *testing.T, tg *testGateway, path string) {
	t.Helper()
	a := tg.dial(t, path, nil)
	pid := readPid(t, a) // printed at once: a joined before the process started
	b := tg.dial(t, path, nil)
	send(t, b, websocket.TextMessage, "both?")
	for _, c := range []*websocket.Conn{a, b} {
		if got := readMessageText(t, c); got != "both?" {
			t.Fatalf("a member got %q, want both?", got)
		}
	}
	send(t, a, websocket.TextMessage, "exit 3")
	for i, c := range []*websocket.Conn{a, b} {
		msgs, ce := readUntilClose(t, c, 5*time.Second)
		if len(msgs) != 0 {
			t.Errorf("member %d got %q before the close", i, msgs)
		}
		assertClose(t, ce, websocket.CloseInternalServerErr, "exit status 3")
	}
	waitGroupGone(t, pid, 3*time.Second)
}

// stopsWhenTheLastLeaves checks that the process of a stream stops once its
// last member has left and the linger is over, not before, and that the hub
// then holds nothing of the stream.
func stopsWhenTheLastLeaves(t *testing.T, tg *testGateway, path string, linger time.Duration) {
	t.Helper()
	c := tg.dial(t, path, nil)
	pid := readPid(t, c)
	left := time.Now()
	c.Close()
	waitGroupGone(t, pid, linger+5*time.Second)
	if d := time.Since(left); d < linger {
		t.Errorf("the process stopped %v after the last member left, before the linger (%v)", d, linger)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		tg.gw.shared.mu.Lock()
		held := len(tg.gw.shared.streams)
		tg.gw.shared.mu.Unlock()
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub still holds %d streams 3 s after the process stopped", held)
		}
	}
	next := tg.dial(t, path, nil)
	if got := readPid(t, next); got == pid {
		t.Errorf("the next client joined the stopped process %d", pid)
	}
}
