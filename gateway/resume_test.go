package gateway

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/wsgate/wsgate/broadcast"
)

// Resume (resume.go): clients that follow positions, on the in-process
// bus; the same on Redis is in bus_test.go.

// emitLinesScript prints the next N numbers when told "emit N", and exits
// with N when told "exit N".
const emitLinesScript = `n=0
while read -r how count; do
  case $how in
  emit) i=0; while [ $i -lt $count ]; do n=$((n+1)); i=$((i+1)); echo $n; done ;;
  exit) exit $count ;;
  esac
done`

// emitGateway serves emitLinesScript in broadcast mode with a replay of
// replay lines.
func emitGateway(t *testing.T, replay int, linger time.Duration) *testGateway {
	cfg := broadcastScript(t, emitLinesScript)
	cfg.Replay, cfg.Linger = replay, linger
	return newTestGateway(t, cfg)
}

// tagged is one message a following client got: a greeting (event set) or
// a line with its position.
type tagged struct {
	pos   broadcast.Position
	event string // "joined" or "reset" for a greeting, "" for a line
	line  string
}

// parseTagged reads a following client's message, failing the test on any
// other form.
func parseTagged(t *testing.T, msg string) tagged {
	t.Helper()
	head, line, ok := strings.Cut(msg, "\n\n")
	id, event, hasEvent := strings.Cut(head, "\nevent: ")
	text, isID := strings.CutPrefix(id, "id: ")
	pos, err := broadcast.ParsePosition(text)
	if !ok || !isID || err != nil || (hasEvent && line != "") || (hasEvent && event != "joined" && event != "reset") {
		t.Fatalf("message %q is neither a line with its position nor a greeting", msg)
	}
	return tagged{pos: pos, event: event, line: line}
}

// readTagged reads n messages of a following client.
func readTagged(t *testing.T, conn *websocket.Conn, n int) []tagged {
	t.Helper()
	var out []tagged
	for _, m := range readN(t, conn, n) {
		out = append(out, parseTagged(t, m))
	}
	return out
}

// expectGreeting reads a greeting and checks it.
func expectGreeting(t *testing.T, conn *websocket.Conn, event string, seq uint64) broadcast.Position {
	t.Helper()
	g := readTagged(t, conn, 1)[0]
	if g.event != event || g.pos.Seq != seq {
		t.Fatalf("greeting %+v, want %s at SEQ %d", g, event, seq)
	}
	return g.pos
}

// expectLines reads the lines from to to, each with its position in epoch:
// the script's numbers are the stream's.
func expectLines(t *testing.T, conn *websocket.Conn, epoch string, from, to int) {
	t.Helper()
	for i, m := range readTagged(t, conn, to-from+1) {
		n := from + i
		if m.event != "" || m.line != strconv.Itoa(n) || m.pos != (broadcast.Position{Epoch: epoch, Seq: uint64(n)}) {
			t.Fatalf("got %+v, want line %d at %s:%d", m, n, epoch, n)
		}
	}
}

func TestResumeAfterADisconnectGetsExactlyTheLinesAfterItsPosition(t *testing.T) {
	t.Parallel()
	tg := emitGateway(t, 50, 0)
	plain := tg.dial(t, "/", nil)
	first := tg.dial(t, "/?last_event_id=", nil)
	epoch := expectGreeting(t, first, "joined", 0).Epoch // a stream with no line yet: E:0
	send(t, plain, websocket.TextMessage, "emit 10")
	expectLines(t, first, epoch, 1, 10)
	if got := readN(t, plain, 10); got[0] != "1" || got[9] != "10" {
		t.Fatalf("a client that does not follow positions got %q", got)
	}
	first.Close()

	send(t, plain, websocket.TextMessage, "emit 5")
	readN(t, plain, 5)
	again := tg.dial(t, "/?last_event_id="+epoch+":10", nil)
	expectGreeting(t, again, "joined", 10)
	expectLines(t, again, epoch, 11, 15)
	send(t, plain, websocket.TextMessage, "emit 3")
	expectLines(t, again, epoch, 16, 18)

	// Its own last position: nothing again, the next line next.
	atHead := tg.dial(t, "/?last_event_id="+epoch+":18", nil)
	expectGreeting(t, atHead, "joined", 18)
	send(t, plain, websocket.TextMessage, "emit 1")
	expectLines(t, atHead, epoch, 19, 19)

	// An empty position: the replay, after the position before it.
	fresh := tg.dial(t, "/?last_event_id=", nil)
	expectGreeting(t, fresh, "joined", 0)
	expectLines(t, fresh, epoch, 1, 19)
}

func TestResumeBeyondTheReplayFromAnotherEpochOrAheadIsAResetThenTheReplay(t *testing.T) {
	t.Parallel()
	tg := emitGateway(t, 5, 0)
	plain := tg.dial(t, "/", nil)
	send(t, plain, websocket.TextMessage, "emit 20")
	readN(t, plain, 20)
	probe := tg.dial(t, "/?last_event_id=", nil)
	epoch := expectGreeting(t, probe, "joined", 15).Epoch
	for name, at := range map[string]string{
		"older than the replay": epoch + ":14",
		"the first line":        epoch + ":1",
		"another epoch":         "x" + epoch + ":18",
		"ahead of the stream":   epoch + ":21",
	} {
		c := tg.dial(t, "/?last_event_id="+at, nil)
		if g := readTagged(t, c, 1)[0]; g.event != "reset" || g.pos != (broadcast.Position{Epoch: epoch, Seq: 15}) {
			t.Fatalf("%s (%s): greeting %+v, want reset at %s:15", name, at, g, epoch)
		}
		expectLines(t, c, epoch, 16, 20)
	}
	// The oldest position the replay continues from.
	c := tg.dial(t, "/?last_event_id="+epoch+":15", nil)
	expectGreeting(t, c, "joined", 15)
	expectLines(t, c, epoch, 16, 20)
}

func TestResumeANewStreamIsANewEpochAndALingeringOneKeepsItsOwn(t *testing.T) {
	t.Parallel()
	tg := emitGateway(t, 10, time.Hour)
	a := tg.dial(t, "/?last_event_id=", nil)
	epoch := expectGreeting(t, a, "joined", 0).Epoch
	send(t, a, websocket.TextMessage, "emit 3")
	expectLines(t, a, epoch, 1, 3)
	a.Close()
	time.Sleep(100 * time.Millisecond) // gone: the stream lingers

	b := tg.dial(t, "/?last_event_id="+epoch+":2", nil)
	expectGreeting(t, b, "joined", 2)
	expectLines(t, b, epoch, 3, 3)
	send(t, b, websocket.TextMessage, "exit 0")
	if _, ce := readUntilClose(t, b, 5*time.Second); ce == nil || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("close %v, want 1000", ce)
	}

	// The process exited: its history is gone, and the next stream's
	// positions are of another epoch, from 1.
	c := tg.dial(t, "/?last_event_id="+epoch+":3", nil)
	g := readTagged(t, c, 1)[0]
	if g.event != "reset" || g.pos.Epoch == epoch || g.pos.Seq != 0 {
		t.Fatalf("after the process's exit: %+v, want a reset at another epoch's 0", g)
	}
	send(t, c, websocket.TextMessage, "emit 1")
	expectLines(t, c, g.pos.Epoch, 1, 1)
}

func TestResumeParameterIsNotPartOfTheStreamNorOfTheProcesssEnvironment(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, broadcastScript(t, `echo "$QUERY_STRING|$REQUEST_URI"; while read -r line; do echo "$line"; done`))
	a := tg.dial(t, "/feed?room=a&last_event_id=&x=%31", nil)
	if got := parseTagged(t, readN(t, a, 2)[1]).line; got != "room=a&x=%31|/feed?room=a&x=%31" {
		t.Fatalf("the process sees %q", got)
	}
	b := tg.dial(t, "/feed?room=a&x=%31", nil) // the same stream
	send(t, b, websocket.TextMessage, "shared")
	if got := readMessageText(t, b); got != "shared" {
		t.Fatalf("a plain client of the same stream got %q", got)
	}
	if got := parseTagged(t, readMessageText(t, a)).line; got != "shared" {
		t.Fatalf("the following client got %q", got)
	}
	// An encoded name is the same parameter.
	c := tg.dial(t, "/feed?room=a&last%5Fevent%5Fid=&x=%31", nil)
	if g := parseTagged(t, readMessageText(t, c)); g.event != "joined" {
		t.Fatalf("an encoded parameter name: %+v", g)
	}
}

func TestResumeMalformedOrRepeatedPositionOrBinaryModeGets400(t *testing.T) {
	t.Parallel()
	text := newTestGateway(t, broadcastScript(t, "cat"))
	binaryCfg := broadcastScript(t, "cat")
	binaryCfg.Binary = true
	binary := newTestGateway(t, binaryCfg)
	cases := []struct {
		tg    *testGateway
		query string
		want  string
	}{
		{text, "last_event_id=abc", "malformed last_event_id"},
		{text, "last_event_id=abc:", "malformed last_event_id"},
		{text, "last_event_id=a-b:1", "malformed last_event_id"},
		{text, "last_event_id=ab:-1", "malformed last_event_id"},
		{text, "last_event_id=ab:1&last_event_id=ab:2", "given more than once"},
		{binary, "last_event_id=", "needs text mode"},
		{binary, "last_event_id=ab:1", "needs text mode"},
	}
	for _, c := range cases {
		_, resp, err := websocket.DefaultDialer.Dial(c.tg.url("/?"+c.query), nil)
		if err == nil {
			t.Fatalf("?%s: the handshake succeeded", c.query)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), c.want) {
			t.Errorf("?%s: %d %q, want 400 saying %q", c.query, resp.StatusCode, body, c.want)
		}
	}
	// Without --broadcast the parameter is the program's.
	perConnection := newTestGateway(t, script(t, `echo "$QUERY_STRING"`))
	if got := readMessageText(t, perConnection.dial(t, "/?last_event_id=nonsense", nil)); got != "last_event_id=nonsense" {
		t.Fatalf("per-connection mode: QUERY_STRING is %q", got)
	}
}

func TestResumeLinesAreTaggedAndCompressedUnderCompress(t *testing.T) {
	t.Parallel()
	const lines, pad = 300, 200
	cfg := broadcastScript(t, `read -r go; awk 'BEGIN { p = sprintf("%`+strconv.Itoa(pad)+`s", ""); gsub(/ /, "a", p); for (i = 1; i <= `+strconv.Itoa(lines)+`; i++) print i " " p }'; cat`)
	cfg.Compress = true
	tg := newTestGateway(t, cfg)
	conn, _, wire := tg.dialCounting(t, "/?last_event_id=", true)
	epoch := expectGreeting(t, conn, "joined", 0).Epoch
	plain := tg.dial(t, "/", nil)
	send(t, plain, websocket.TextMessage, "go")
	payload := 0
	for i, m := range readTagged(t, conn, lines) {
		want := strconv.Itoa(i+1) + " " + strings.Repeat("a", pad)
		if m.line != want || m.pos != (broadcast.Position{Epoch: epoch, Seq: uint64(i + 1)}) {
			t.Fatalf("message %d: %+v", i, m)
		}
		payload += len(want)
	}
	if n := wire.read.Load(); n > int64(payload/3) {
		t.Errorf("%d bytes on the wire for %d of lines: the tagged lines were not compressed", n, payload)
	}
}

func TestResumeOnTheBusWorksOnAnyInstanceAndATakeoverContinuesThePositions(t *testing.T) {
	cfg := script(t, emitLinesScript)
	cfg.Replay = 50
	tgs, _ := busGateways(t, 2, cfg)
	leaderClient := tgs[0].dial(t, "/", nil)
	waitLeader(t, tgs, "/?", 2*time.Second)
	relayClient := tgs[1].dial(t, "/", nil) // keeps instance 1 in the stream
	f := tgs[1].dial(t, "/?last_event_id=", nil)
	epoch := expectGreeting(t, f, "joined", 0).Epoch
	send(t, leaderClient, websocket.TextMessage, "emit 10")
	expectLines(t, f, epoch, 1, 10)
	f.Close()
	send(t, leaderClient, websocket.TextMessage, "emit 5")
	readN(t, relayClient, 15)

	// On the other instance, from where it was.
	g := tgs[0].dial(t, "/?last_event_id="+epoch+":10", nil)
	expectGreeting(t, g, "joined", 10)
	expectLines(t, g, epoch, 11, 15)

	// The leader shuts down: instance 1 takes the stream over, in the same
	// history, from 15, with a process of its own (whose count starts
	// again at 1).
	if err := tgs[0].gw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, tgs[1:], "/?", 3*time.Second)
	h := tgs[1].dial(t, "/?last_event_id="+epoch+":15", nil)
	expectGreeting(t, h, "joined", 15)
	send(t, relayClient, websocket.TextMessage, "emit 2")
	for i, m := range readTagged(t, h, 2) {
		if want := (broadcast.Position{Epoch: epoch, Seq: uint64(16 + i)}); m.pos != want || m.line != strconv.Itoa(1+i) {
			t.Fatalf("after the takeover: %+v, want the new process's line %d at %v", m, 1+i, want)
		}
	}
}

func TestFencingALeaderThatLostItsLeaseDeliversNothingMoreEvenToItsOwnClients(t *testing.T) {
	cfg := script(t, pacedLinesScript)
	cfg.QueueSize = 100000
	tgs, srv := busGateways(t, 2, cfg)
	own := tgs[0].dial(t, "/?last_event_id=", nil)
	waitLeader(t, tgs, "/?", 2*time.Second)
	relayed := tgs[1].dial(t, "/?last_event_id=", nil)
	readTagged(t, relayed, 200) // lines flow through the bus

	// Another instance takes the lease (as one would from a leader frozen
	// past its lease): the leader must not hand its own clients a line the
	// bus did not take.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.Set(context.Background(), "wsgate:{/?}:lease", "another#99", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	ownMsgs, ce := readUntilClose(t, own, 10*time.Second)
	assertClose(t, ce, websocket.CloseServiceRestart, "service restart")
	relayedMsgs := readFor(t, relayed, 2*time.Second)
	last := func(msgs []string) uint64 {
		if len(msgs) == 0 {
			return 0
		}
		return parseTagged(t, msgs[len(msgs)-1]).pos.Seq
	}
	busLast, _ := rdb.Get(context.Background(), "wsgate:{/?}:seq").Uint64()
	t.Logf("the leader's client got to %d, the relay's to %d; the bus holds %d", last(ownMsgs), last(relayedMsgs), busLast)
	if last(ownMsgs) > busLast {
		t.Fatalf("the leader's own client got lines up to %d, the bus only took %d: lines no other instance saw", last(ownMsgs), busLast)
	}
}

// readFor reads messages for d, or until the connection ends.
func readFor(t *testing.T, conn *websocket.Conn, d time.Duration) []string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	var msgs []string
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return msgs
		}
		msgs = append(msgs, string(data))
	}
}
