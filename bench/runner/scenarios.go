package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// metric is one figure a scenario reports; higher says which way is better.
type metric struct {
	name     string
	higher   bool
	decimals int
}

// scenario is one benchmark: the program each server runs per connection
// (or, for a broadcast scenario, once for all), the figures it reports, a
// time limit, and the client side that produces those figures (in metrics
// order) or fails on the first wrong byte.
type scenario struct {
	name    string
	command func(cfg config) []string
	metrics []metric
	timeout time.Duration
	run     func(ctx context.Context, s *server, sz sizes) ([]float64, error)
	// wsgateFlags are given to wsgate alone, before the command.
	wsgateFlags []string
	// broadcast runs the servers with --broadcast; one without broadcast
	// mode sits the scenario out, and its column shows "-".
	broadcast bool
}

// sizes holds every count and duration the scenarios use, so that --smoke
// can shrink them all in one place.
type sizes struct {
	spawnConns, spawnWorkers int
	echoMsgs, echoInflight   int
	streamLines              int
	deflateLines             int
	idleConns                int
	idleHold                 time.Duration
	scaleConns               int
	scaleHold                time.Duration
	bigBytes                 int
	dialWorkers              int // handshakes in flight when opening many connections
	// The fan-out scenarios: throughput on credit, and latency at two rates.
	fanout, fanoutLat, fanout10k fanPlan
}

// fullSizes are the figures the issue specifies.
var fullSizes = sizes{
	spawnConns: 2000, spawnWorkers: 8,
	echoMsgs: 200_000, echoInflight: 100,
	streamLines: 500_000, deflateLines: 200_000,
	idleConns: 1000, idleHold: 10 * time.Second,
	scaleConns: 10_000, scaleHold: 5 * time.Second,
	bigBytes:    16 << 20,
	dialWorkers: 100,
	fanout:      fanPlan{subs: 1000, lines: 5000, window: 512, hold: 2 * time.Second},
	fanoutLat:   fanPlan{subs: 1000, lines: 1000, rate: 100, window: 512, hold: time.Second},
	fanout10k:   fanPlan{subs: 10_000, lines: 100, rate: 10, window: 512, hold: 2 * time.Second},
}

// smokeSizes make every scenario run in about a second; they prove
// correctness, not speed.
var smokeSizes = sizes{
	spawnConns: 20, spawnWorkers: 8,
	echoMsgs: 500, echoInflight: 100,
	streamLines: 2000, deflateLines: 2000,
	idleConns: 20, idleHold: time.Second,
	scaleConns: 50, scaleHold: time.Second,
	bigBytes:    64 << 10,
	dialWorkers: 10,
	fanout:      fanPlan{subs: 20, lines: 2000, window: 512, hold: 200 * time.Millisecond},
	fanoutLat:   fanPlan{subs: 20, lines: 20, rate: 100, window: 512, hold: 200 * time.Millisecond},
	fanout10k:   fanPlan{subs: 50, lines: 10, rate: 10, window: 512, hold: 200 * time.Millisecond},
}

// catCommand is the per-connection program of every echo scenario.
func catCommand(config) []string { return []string{"cat"} }

// scenarios lists every benchmark in the order they run and are reported.
var scenarios = []scenario{
	{
		name: "spawn", command: catCommand, timeout: 3 * time.Minute, run: runSpawn,
		metrics: []metric{
			{"connections/s", true, 0},
			{"connect-to-echo p50 (ms)", false, 2},
			{"connect-to-echo p99 (ms)", false, 2},
			{"gateway CPU per connection (µs)", false, 0},
		},
	},
	{
		name: "echo", command: catCommand, timeout: 3 * time.Minute, run: runEcho,
		metrics: []metric{
			{"messages/s", true, 0},
			{"round trip p50 (µs)", false, 0},
			{"round trip p99 (µs)", false, 0},
			{"gateway CPU per message (µs)", false, 2},
		},
	},
	{
		name: "stream", timeout: 3 * time.Minute, run: runStream,
		command: func(cfg config) []string { return []string{"seq", "1", strconv.Itoa(cfg.sizes.streamLines)} },
		metrics: []metric{
			{"lines/s", true, 0},
			{"gateway CPU per line (µs)", false, 2},
		},
	},
	deflateScenario("deflate", trades, func(sz sizes) int { return sz.deflateLines }),
	deflateScenario("deflate-book", books, func(sz sizes) int { return sz.deflateLines / 4 }),
	{
		name: "idle", command: catCommand, timeout: 2 * time.Minute, run: runIdle,
		metrics: []metric{
			{"gateway RSS before (MiB)", false, 1},
			{"gateway RSS per connection (KiB)", false, 1},
			{"children left 2 s after close", false, 0},
		},
	},
	{
		name: "scale", command: catCommand, timeout: 10 * time.Minute, run: runScale,
		metrics: []metric{
			{"open + echo all (s)", false, 2},
			{"gateway RSS (MiB)", false, 1},
			{"gateway RSS per connection (KiB)", false, 1},
			{"all children reaped after (s)", false, 2},
		},
	},
	{
		name: "big", command: catCommand, timeout: 2 * time.Minute, run: runBig,
		metrics: []metric{
			{"round trip (ms)", false, 0},
			{"gateway peak RSS (MiB)", false, 1},
		},
	},
	{
		name: "fanout", broadcast: true, timeout: 3 * time.Minute, run: runFanout,
		command: func(cfg config) []string { return cfg.sizes.fanout.command(cfg.producer) },
		metrics: []metric{
			{"delivered messages/s", true, 0},
			{"gateway CPU per delivery (µs)", false, 2},
			{"gateway RSS per subscriber, idle (KiB)", false, 1},
			{"gateway RSS per subscriber, peak (KiB)", false, 1},
			{"lines lost", false, 0},
		},
	},
	{
		name: "fanout-lat", broadcast: true, timeout: 2 * time.Minute, run: runFanoutLatency,
		command: func(cfg config) []string { return cfg.sizes.fanoutLat.command(cfg.producer) },
		metrics: []metric{
			{"line latency p50 (ms)", false, 2},
			{"line latency p99 (ms)", false, 2},
			{"gateway CPU per delivery (µs)", false, 2},
			{"lines lost", false, 0},
		},
	},
	{
		name: "fanout-10k", broadcast: true, timeout: 5 * time.Minute, run: runFanout10k,
		command: func(cfg config) []string { return cfg.sizes.fanout10k.command(cfg.producer) },
		metrics: []metric{
			{"line latency p50 (ms)", false, 2},
			{"line latency p99 (ms)", false, 2},
			{"gateway CPU per delivery (µs)", false, 2},
			{"gateway RSS per subscriber, idle (KiB)", false, 1},
			{"gateway open files", false, 0},
			{"lines lost", false, 0},
		},
	},
}

// reapTimeout bounds how long a scenario waits for the gateway's children to
// be gone after its clients have left.
const reapTimeout = 30 * time.Second

// runSpawn opens spawnConns short connections from spawnWorkers workers:
// connect, one round trip, closing handshake. The CPU reading is taken once
// every child is reaped so that teardown is part of the cost.
func runSpawn(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	cpu0, err := cpuTime(s.pid())
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, sz.spawnConns)
	start := time.Now()
	err = forEach(ctx, sz.spawnConns, sz.spawnWorkers, func(i int) error {
		t0 := time.Now()
		c, err := s.dial(ctx)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		defer closeGracefully(c)
		if _, err := roundTrip(c, connMessage(i, 0), nil); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		lat[i] = time.Since(t0)
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	if left, _ := waitReaped(ctx, s.pid()); left != 0 {
		return nil, fmt.Errorf("%d children still running %v after the clients closed", left, reapTimeout)
	}
	cpu1, err := cpuTime(s.pid())
	if err != nil {
		return nil, err
	}
	return []float64{
		perSecond(sz.spawnConns, elapsed),
		millis(percentile(lat, 50)),
		millis(percentile(lat, 99)),
		perItemMicros(cpu1-cpu0, sz.spawnConns),
	}, nil
}

// echoSize is the length of every echo-scenario message.
const echoSize = 64

// runEcho pipelines echoMsgs messages over one connection with echoInflight
// unanswered at most, checking each reply.
func runEcho(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer closeGracefully(c)
	// One round trip first so that spawning cat is not in the figures.
	if _, err := roundTrip(c, []byte("warm-up"), nil); err != nil {
		return nil, err
	}
	cpu0, err := cpuTime(s.pid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rtts, err := pipelineEcho(c, sz.echoMsgs, sz.echoInflight)
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	cpu1, err := cpuTime(s.pid())
	if err != nil {
		return nil, err
	}
	return []float64{
		perSecond(sz.echoMsgs, elapsed),
		micros(percentile(rtts, 50)),
		micros(percentile(rtts, 99)),
		perItemMicros(cpu1-cpu0, sz.echoMsgs),
	}, nil
}

// pipelineEcho runs sendEcho and receiveEcho side by side: one writer and one
// reader, as gorilla requires. Tokens keep at most inflight messages
// unanswered; sentAt[i%inflight] holds the send time of message i, which its
// slot cannot be reused for until message i has been answered.
func pipelineEcho(c *websocket.Conn, n, inflight int) ([]time.Duration, error) {
	tokens := make(chan struct{}, inflight)
	for range inflight {
		tokens <- struct{}{}
	}
	sentAt := make([]atomic.Int64, inflight)
	epoch := time.Now()
	stop := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() { writeErr <- sendEcho(c, n, tokens, sentAt, epoch, stop) }()
	rtts, err := receiveEcho(c, n, tokens, sentAt, epoch)
	close(stop)
	if err != nil {
		c.Close() // unblocks a writer stuck in a write
	}
	if werr := <-writeErr; err == nil && werr != nil {
		err = werr
	}
	return rtts, err
}

// sendEcho writes messages 0..n-1, each when a token is free.
func sendEcho(c *websocket.Conn, n int, tokens chan struct{}, sentAt []atomic.Int64, epoch time.Time, stop chan struct{}) error {
	buf := make([]byte, 0, echoSize)
	for i := range n {
		select {
		case <-tokens:
		case <-stop:
			return nil
		}
		buf = echoPayload(buf, i)
		sentAt[i%len(sentAt)].Store(int64(time.Since(epoch)))
		if err := c.WriteMessage(websocket.TextMessage, buf); err != nil {
			return fmt.Errorf("send message %d: %w", i, err)
		}
	}
	return nil
}

// receiveEcho reads n replies, checks each against what message i must be,
// records its round trip and frees its token.
func receiveEcho(c *websocket.Conn, n int, tokens chan struct{}, sentAt []atomic.Int64, epoch time.Time) ([]time.Duration, error) {
	rtts := make([]time.Duration, n)
	want := make([]byte, 0, echoSize)
	buf := make([]byte, 0, 4096)
	for i := range n {
		var err error
		buf, err = readText(c, buf)
		if err != nil {
			return nil, fmt.Errorf("read reply %d of %d: %w", i, n, err)
		}
		now := time.Since(epoch)
		want = echoPayload(want, i)
		if err := mismatch(buf, want); err != nil {
			return nil, fmt.Errorf("reply %d: %w", i, err)
		}
		rtts[i] = now - time.Duration(sentAt[i%len(sentAt)].Load())
		tokens <- struct{}{}
	}
	return rtts, nil
}

// echoPayload writes message i into buf: its number, a space, then letters
// shifted by i up to echoSize bytes, so that no two neighbours are equal.
func echoPayload(buf []byte, i int) []byte {
	buf = strconv.AppendInt(buf[:0], int64(i), 10)
	buf = append(buf, ' ')
	for len(buf) < echoSize {
		buf = append(buf, byte('a'+(i+len(buf))%26))
	}
	return buf
}

// streamEndWait bounds the wait for the connection to end after the last line.
const streamEndWait = 2 * time.Second

// runStream reads the output of `seq 1 N` and checks every line is the next number.
func runStream(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	cpu0, err := cpuTime(s.pid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := dial(ctx, s.url)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := readSeq(c, sz.streamLines); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	if err := expectEnd(c); err != nil {
		return nil, err
	}
	cpu1, err := cpuTime(s.pid())
	if err != nil {
		return nil, err
	}
	return []float64{
		perSecond(sz.streamLines, elapsed),
		perItemMicros(cpu1-cpu0, sz.streamLines),
	}, nil
}

// readSeq reads n messages and checks that message i is the decimal i+1.
func readSeq(c *websocket.Conn, n int) error {
	buf := make([]byte, 0, 64)
	want := make([]byte, 0, 20)
	for i := 1; i <= n; i++ {
		var err error
		buf, err = readText(c, buf)
		if err != nil {
			return fmt.Errorf("read line %d of %d: %w", i, n, err)
		}
		want = strconv.AppendInt(want[:0], int64(i), 10)
		if err := mismatch(buf, want); err != nil {
			return fmt.Errorf("line %d: %w", i, err)
		}
	}
	return nil
}

// expectEnd checks that no data follows the last line: the server may close
// the connection (as it should once seq exits) or stay silent; another
// message is a failure.
func expectEnd(c *websocket.Conn) error {
	c.SetReadDeadline(time.Now().Add(streamEndWait))
	_, msg, err := c.ReadMessage()
	if err == nil {
		return fmt.Errorf("unexpected message after the last line: %q", excerpt(msg, 0))
	}
	return nil
}

// runBig sends one bigBytes text message to cat and checks the echo byte for
// byte; the server's peak RSS shows how much it buffered on the way.
func runBig(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	payload := bigPayload(sz.bigBytes)
	c, err := dialWith(ctx, bigDialer, s.url)
	if err != nil {
		return nil, err
	}
	defer closeGracefully(c)
	start := time.Now()
	// Writing and reading overlap: a server may stream the line back while
	// the client is still sending it.
	writeErr := make(chan error, 1)
	go func() { writeErr <- c.WriteMessage(websocket.TextMessage, payload) }()
	got, err := readText(c, make([]byte, 0, len(payload)))
	elapsed := time.Since(start)
	if err != nil {
		c.Close() // unblocks the writer if the server stopped reading
	}
	if werr := <-writeErr; werr != nil {
		return nil, fmt.Errorf("send %d bytes: %w", len(payload), werr)
	}
	if err != nil {
		return nil, fmt.Errorf("read echo of %d bytes: %w", len(payload), err)
	}
	if err := mismatch(got, payload); err != nil {
		return nil, err
	}
	hwm, err := statusKiB(s.pid(), "VmHWM")
	if err != nil {
		return nil, err
	}
	return []float64{millis(elapsed), float64(hwm) / 1024}, nil
}

// bigPayload returns n printable bytes with no newline. The pattern drifts
// every 4093 bytes, so a repeated, dropped or reordered chunk is caught.
func bigPayload(n int) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for j := range b {
		b[j] = alphabet[(j+j/4093)%len(alphabet)]
	}
	return b
}
