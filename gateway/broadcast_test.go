package gateway

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// broadcastScript is a Config running a shell script in broadcast mode.
func broadcastScript(t *testing.T, body string) Config {
	cfg := script(t, body)
	cfg.Broadcast = true
	return cfg
}

// echoPidScript answers each line with the shared child's pid, the first
// client's port and the line.
const echoPidScript = `while read -r line; do echo "$$ $REMOTE_PORT $line"; done`

// localPort is the client's own port, as the gateway sees it.
func clientPort(conn *websocket.Conn) string {
	_, port, _ := net.SplitHostPort(conn.LocalAddr().String())
	return port
}

// readUntil reads messages until one equals want, bounded, and returns the
// ones before it.
func readUntil(t *testing.T, conn *websocket.Conn, want string) []string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var before []string
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d messages, waiting for %q: %v", len(before), want, err)
		}
		if string(data) == want {
			return before
		}
		before = append(before, string(data))
	}
}

// readN reads n messages, bounded.
func readN(t *testing.T, conn *websocket.Conn, n int) []string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	msgs := make([]string, 0, n)
	for len(msgs) < n {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d of %d messages: %v", len(msgs), n, err)
		}
		msgs = append(msgs, string(data))
	}
	return msgs
}

// assertConsecutive checks that msgs begin with numbers, each one more than
// the one before, and returns the first.
func assertConsecutive(t *testing.T, msgs []string) int {
	t.Helper()
	first := -1
	for i, m := range msgs {
		number, _, _ := strings.Cut(m, " ")
		n, err := strconv.Atoi(number)
		if err != nil {
			t.Fatalf("message %d is %q, not a number", i, m)
		}
		if i == 0 {
			first = n
		} else if n != first+i {
			t.Fatalf("message %d is %d after %.10s: a gap or a duplicate", i, n, msgs[i-1])
		}
	}
	return first
}

func TestBroadcastClientsOfAStreamShareOneProcessStartedWithTheFirstsEnvironment(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, echoPidScript))
	a := tg.dial(t, "/feed?x=1", nil)
	b := tg.dial(t, "/feed?x=1", nil)
	other := tg.dial(t, "/feed?x=2", nil)
	send(t, b, websocket.TextMessage, "from-b")
	wantSuffix := " " + clientPort(a) + " from-b"
	gotA, gotB := readMessageText(t, a), readMessageText(t, b)
	if gotA != gotB || !strings.HasSuffix(gotA, wantSuffix) {
		t.Fatalf("a got %q, b got %q: want one process, with a's environment, answering both", gotA, gotB)
	}
	send(t, other, websocket.TextMessage, "from-other")
	gotOther := readMessageText(t, other)
	if strings.Fields(gotOther)[0] == strings.Fields(gotA)[0] {
		t.Errorf("another query string shares the process: %q and %q", gotOther, gotA)
	}
	_ = a.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, data, err := a.ReadMessage(); err == nil {
		t.Errorf("a client of ?x=1 got %q from the ?x=2 stream", data)
	}
}

func TestBroadcastClientsJoiningAtOnceShareOneProcess(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, "exec cat"))
	// Many headers make each joiner's CGI environment slow to build, and
	// joiners build it outside the registry's lock: they arrive at the
	// registry close together.
	header := http.Header{}
	for i := range 300 {
		header.Set("X-Filler-"+strconv.Itoa(i), strings.Repeat("x", 64))
	}
	const clients = 30
	start := make(chan struct{})
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			<-start
			conn, resp, err := websocket.DefaultDialer.Dial(tg.url("/?same"), header)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			t.Cleanup(func() { conn.Close() })
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	if n := strings.Count(tg.logs.String(), `msg="shared process started"`); n != 1 {
		t.Errorf("%d shared processes started for %d clients joining one stream at once, want 1", n, clients)
	}
}

func TestBroadcastEveryClientGetsEveryLineInTheSameOrder(t *testing.T) {
	t.Parallel()
	const lines = 5000
	cfg := broadcastScript(t, "read -r go; seq 1 "+strconv.Itoa(lines)+"; exec cat >/dev/null")
	cfg.QueueSize = 2 * lines // this test is about order, not slowness
	tg := newTestGateway(t, cfg)
	conns := make([]*websocket.Conn, 3)
	for i := range conns {
		conns[i] = tg.dial(t, "/", nil)
	}
	send(t, conns[0], websocket.TextMessage, "go")
	for _, c := range conns {
		if first := assertConsecutive(t, readN(t, c, lines)); first != 1 {
			t.Errorf("a client's lines start at %d", first)
		}
	}
}

func TestBroadcastLinesFromEveryClientReachStdinWholeAndInTheirOrder(t *testing.T) {
	t.Parallel()
	const clients, lines = 4, 200
	tg := newTestGateway(t, broadcastScript(t, "exec cat"))
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = tg.dial(t, "/", nil)
	}
	line := func(client, n int) string {
		head := fmt.Sprintf("client %d line %04d ", client, n)
		return head + strings.Repeat(string(rune('a'+client)), 2048-len(head))
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range lines {
				if err := c.WriteMessage(websocket.TextMessage, []byte(line(i, n))); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
			}
		}()
	}
	var first []string
	for i, c := range conns {
		got := readN(t, c, clients*lines)
		next := make([]int, clients)
		for _, m := range got {
			var client, n int
			if _, err := fmt.Sscanf(m, "client %d line %d ", &client, &n); err != nil || client >= clients || m != line(client, n) {
				t.Fatalf("client %d got a line that is not one sent whole: %.60q... (%d bytes)", i, m, len(m))
			}
			if n != next[client] {
				t.Fatalf("client %d got client %d's line %d where %d was due", i, client, n, next[client])
			}
			next[client]++
		}
		if first == nil {
			first = got
		} else if strings.Join(got, "\n") != strings.Join(first, "\n") {
			t.Errorf("client %d got the lines in another order than client 0", i)
		}
	}
	wg.Wait()
}

func TestBroadcastClientHasJoinedOnceItsHandshakeIsDone(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, "exec cat"))
	speaker := tg.dial(t, "/", nil)
	for i := range 20 {
		listener := tg.dial(t, "/", nil)
		mark := "mark " + itoa(i)
		send(t, speaker, websocket.TextMessage, mark) // printed after the listener's handshake
		readUntil(t, listener, mark)
		readUntil(t, speaker, mark)
		listener.Close()
	}
}

// numbersScript prints 1, 2, 3... as fast as it can.
const numbersScript = `i=0; while :; do i=$((i+1)); echo $i; done`

func TestBroadcastReplayThenLiveHasNoGapOrDuplicateAtTheSeam(t *testing.T) {
	t.Parallel()
	cfg := broadcastScript(t, numbersScript)
	cfg.Replay, cfg.QueueSize = 100, 1<<20
	tg := newTestGateway(t, cfg)
	first := tg.dial(t, "/", nil)
	readN(t, first, 500) // the stream is well under way
	for range 5 {
		late := tg.dial(t, "/", nil)
		if start := assertConsecutive(t, readN(t, late, 2000)); start <= 1 {
			t.Errorf("a late client started at %d: want the replay of recent lines", start)
		}
		late.Close()
	}
}

// pacedLinesScript prints numbered lines of 1000 bytes, 50 every 10 ms:
// megabytes a second, which a reading client keeps up with, and which fill a
// silent client's socket buffers within a few seconds.
const pacedLinesScript = `exec awk 'BEGIN { p = sprintf("%990s", ""); gsub(/ /, "x", p);
	for (i = 1; ; i++) { printf "%d %s\n", i, p; if (i % 50 == 0) { fflush(); system("sleep 0.01") } } }'`

// ackPacedLinesScript prints numbered lines of 1000 bytes, a chunk of 100
// once told "go" and another after each "ack" on its stdin: the client that
// acks sets the pace, so that a reader is never more than a chunk behind
// however short of CPU a loaded machine leaves it, while a silent client's
// socket buffers and queue fill up. (The shell reads the acks: awk would
// wait to fill its buffer.)
const ackPacedLinesScript = `read -r go; i=0; while :; do
	awk -v from=$((i * 100 + 1)) 'BEGIN { p = sprintf("%990s", ""); gsub(/ /, "x", p);
		for (n = from; n < from + 100; n++) printf "%d %s\n", n, p }'
	i=$((i + 1)); read -r ack || exit 0; done`

// readChunk reads a chunk of ackPacedLinesScript's lines from each of
// readers, then acks for the next with the first.
func readChunk(t *testing.T, readers ...*websocket.Conn) [][]string {
	t.Helper()
	chunks := make([][]string, len(readers))
	for i, r := range readers {
		chunks[i] = readN(t, r, 100)
	}
	send(t, readers[0], websocket.TextMessage, "ack")
	return chunks
}

func TestBroadcastSlowClientIsClosed1013AfterAGapFreeRunAndHoldsNoOneBack(t *testing.T) {
	t.Parallel()
	cfg := broadcastScript(t, ackPacedLinesScript)
	cfg.QueueSize = 256
	tg := newTestGateway(t, cfg)
	slow := tg.dial(t, "/", nil)
	fast := tg.dial(t, "/", nil)
	send(t, fast, websocket.TextMessage, "go")
	// The slow client reads nothing until its queue has overflowed; the fast
	// one keeps reading meanwhile and must not be held back: it sets the
	// pace, and would wait in vain.
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(tg.logs.String(), "client too slow") {
		if time.Now().After(deadline) {
			t.Fatal("the silent client was not closed as too slow")
		}
		got = append(got, readChunk(t, fast)[0]...)
	}
	assertConsecutive(t, got)
	msgs, ce := readUntilClose(t, slow, 10*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "client too slow")
	if len(msgs) > 0 {
		assertConsecutive(t, msgs)
	}
	assertConsecutive(t, readChunk(t, fast)[0][:1]) // still served
}

func TestBroadcastLastClientLeavingStopsTheProcessAfterTheLinger(t *testing.T) {
	t.Parallel()
	cfg := broadcastScript(t, echoPidScript)
	cfg.Linger = 400 * time.Millisecond
	tg := newTestGateway(t, cfg)
	pidOf := func(conn *websocket.Conn) int {
		send(t, conn, websocket.TextMessage, "pid?")
		pid, _ := strconv.Atoi(strings.Fields(readMessageText(t, conn))[0])
		return pid
	}
	a := tg.dial(t, "/", nil)
	pid := pidOf(a)
	a.Close()
	time.Sleep(100 * time.Millisecond) // well within the linger
	b := tg.dial(t, "/", nil)
	if got := pidOf(b); got != pid {
		t.Fatalf("a client joining within the linger got process %d, want %d", got, pid)
	}
	b.Close()
	waitGroupGone(t, pid, cfg.Linger+2*time.Second)
	c := tg.dial(t, "/", nil)
	if got := pidOf(c); got == pid {
		t.Errorf("the next client joined the stopped process")
	}
}

func TestBroadcastProcessExitClosesEveryClientAndTheNextStartsANewOne(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, `read -r line; echo "bye $$"; exit 3`))
	a := tg.dial(t, "/", nil)
	b := tg.dial(t, "/", nil)
	send(t, a, websocket.TextMessage, "quit")
	var bye []string
	for _, c := range []*websocket.Conn{a, b} {
		msgs, ce := readUntilClose(t, c, 5*time.Second)
		assertClose(t, ce, websocket.CloseInternalServerErr, "exit status 3")
		bye = append(bye, strings.Join(msgs, "|"))
	}
	if bye[0] != bye[1] || !strings.HasPrefix(bye[0], "bye ") {
		t.Fatalf("clients got %q", bye)
	}
	c := tg.dial(t, "/", nil)
	send(t, c, websocket.TextMessage, "quit")
	msgs, _ := readUntilClose(t, c, 5*time.Second)
	if len(msgs) != 1 || msgs[0] == bye[0] {
		t.Errorf("the next client got %q: want a new process's bye", msgs)
	}
	logs := tg.waitForLog(t, "shared process ended", 2*time.Second)
	if !strings.Contains(logs, "clients=2") || !strings.Contains(logs, `exit="exit status 3"`) {
		t.Errorf("the shared process's line lacks its clients or exit:\n%s", logs)
	}
}

func TestBroadcastShutdownCloses1001AndStopsEverySharedProcess(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, echoPidScript))
	var pids []int
	var conns []*websocket.Conn
	for _, q := range []string{"a", "a", "b"} {
		c := tg.dial(t, "/?"+q, nil)
		send(t, c, websocket.TextMessage, "pid?")
		pid, _ := strconv.Atoi(strings.Fields(readMessageText(t, c))[0])
		pids, conns = append(pids, pid), append(conns, c)
	}
	if err := tg.gw.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		_, ce := readUntilClose(t, c, 3*time.Second)
		assertClose(t, ce, websocket.CloseGoingAway, "server shutting down")
	}
	for _, pid := range pids {
		waitGroupGone(t, pid, time.Second)
	}
}

func TestBroadcastAccessLineNamesTheSharedPid(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, echoPidScript))
	a := tg.dial(t, "/", nil)
	send(t, a, websocket.TextMessage, "x")
	pid := strings.Fields(readMessageText(t, a))[0]
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = a.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	fields := accessFields(t, tg.waitForLog(t, "session ended", 3*time.Second))
	if fields["pid"] != pid || fields["msgs_in"] != "1" || fields["msgs_out"] != "1" || fields["close_code"] != "1000" {
		t.Errorf("access line = %v, want pid %s, one message each way, 1000", fields, pid)
	}
}

func TestMaxConnsRefusesWith1013InBothModes(t *testing.T) {
	t.Parallel()
	for _, broadcast := range []bool{false, true} {
		t.Run(fmt.Sprintf("broadcast=%v", broadcast), func(t *testing.T) {
			t.Parallel()
			cfg := command(t, "cat")
			cfg.Broadcast, cfg.MaxConns = broadcast, 2
			tg := newTestGateway(t, cfg)
			first, second := tg.dial(t, "/", nil), tg.dial(t, "/", nil)
			_, ce := readUntilClose(t, tg.dial(t, "/", nil), 3*time.Second)
			assertClose(t, ce, websocket.CloseTryAgainLater, "too many connections")
			first.Close()
			tg.waitForLog(t, `close_reason="connection dropped"`, 3*time.Second)
			third := tg.dial(t, "/", nil)
			send(t, third, websocket.TextMessage, "third")
			if got := readMessageText(t, third); got != "third" {
				t.Errorf("after a slot freed, echo = %q", got)
			}
			second.Close()
		})
	}
}

func TestBroadcastMaxForksCountsSharedProcesses(t *testing.T) {
	t.Parallel()
	cfg := broadcastScript(t, "exec cat")
	cfg.MaxForks = 1
	tg := newTestGateway(t, cfg)
	a := tg.dial(t, "/?a", nil)
	b := tg.dial(t, "/?a", nil) // the same process: no new fork
	send(t, b, websocket.TextMessage, "shared")
	if got := readMessageText(t, a); got != "shared" {
		t.Fatalf("a got %q", got)
	}
	_, ce := readUntilClose(t, tg.dial(t, "/?b", nil), 3*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "too many connections")
}

func TestBroadcastInBinaryModeWithPassStderrAndDir(t *testing.T) {
	t.Parallel()
	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		cfg := command(t, "cat")
		cfg.Broadcast, cfg.Binary = true, true
		tg := newTestGateway(t, cfg)
		a, b := tg.dial(t, "/", nil), tg.dial(t, "/", nil)
		payload := "\x00\xff\x01 bytes\n"
		send(t, a, websocket.BinaryMessage, payload)
		for _, c := range []*websocket.Conn{a, b} {
			var got []byte
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for len(got) < len(payload) {
				_, data, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, data...)
			}
			if string(got) != payload {
				t.Errorf("got %q, want %q", got, payload)
			}
		}
	})
	t.Run("passstderr", func(t *testing.T) {
		t.Parallel()
		cfg := broadcastScript(t, `while read -r l; do echo "out $l"; echo "err $l" >&2; done`)
		cfg.PassStderr = true
		tg := newTestGateway(t, cfg)
		a, b := tg.dial(t, "/", nil), tg.dial(t, "/", nil)
		send(t, a, websocket.TextMessage, "x")
		for _, c := range []*websocket.Conn{a, b} {
			got := readN(t, c, 2)
			joined := strings.Join(got, " ")
			if !strings.Contains(joined, `{"stream":"stdout","data":"out x"}`) || !strings.Contains(joined, `{"stream":"stderr","data":"err x"}`) {
				t.Errorf("got %q", got)
			}
		}
	})
	t.Run("dir", func(t *testing.T) {
		t.Parallel()
		dir := scriptDir(t, map[string]string{"room.sh": "exec cat"})
		tg := newTestGateway(t, Config{Dir: dir, Broadcast: true})
		a, b := tg.dial(t, "/room.sh", nil), tg.dial(t, "/room.sh", nil)
		send(t, b, websocket.TextMessage, "hello room")
		if got := readMessageText(t, a); got != "hello room" {
			t.Errorf("a got %q", got)
		}
	})
}

// Every line must reach every client without waiting for the next one: a
// wake-up lost between the stream's delivery workers and a member's writer
// would leave a line until more output came, and here none comes until
// every client has the line.
func TestBroadcastEachLineArrivesWithoutWaitingForTheNext(t *testing.T) {
	t.Parallel()
	const clients, rounds = 3, 300
	tg := newTestGateway(t, broadcastScript(t, "exec cat"))
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = tg.dial(t, "/", nil)
	}
	for n := range rounds {
		want := strconv.Itoa(n)
		send(t, conns[n%clients], websocket.TextMessage, want)
		for i, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := c.ReadMessage()
			if err != nil || string(data) != want {
				t.Fatalf("round %d: client %d got %q, %v; want %q", n, i, data, err, want)
			}
		}
	}
}
