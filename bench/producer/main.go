// Command producer is the shared child of the benchmark's fan-out scenarios:
// the one process a broadcast server runs for all its clients. It speaks the
// protocol of bench/internal/fanout.
//
//	producer --subscribers=N --lines=L [--size=B] [--window=W | --rate=R]
//
// It waits until each of the N subscribers has said hello, prints "ready",
// waits for "go", then prints lines 1 to L, each B bytes (without the
// newline) and stamped with the time it was printed. With --rate it prints R
// lines a second, on a fixed schedule. Without it, it prints as fast as the
// subscribers read, in credit mode: never more than W lines ahead of the
// lowest line every subscriber has acknowledged, so that no subscriber's
// queue in the server ever holds more than W lines and none is dropped for
// being slow. It keeps output buffered while it has credit and flushes
// before it waits for more.
//
// A message it cannot parse, or an ack from an unknown subscriber or for a
// line not printed yet, makes it exit with status 1, which the server passes
// on to every client as the end of the stream. It exits 0 when its stdin
// closes: its last client has gone.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/internal/fanout"
)

func main() {
	subscribers := flag.Int("subscribers", 1, "subscribers that must say hello before anything is printed")
	lines := flag.Int64("lines", 1000, "numbered lines to print after go")
	size := flag.Int("size", 64, "bytes per numbered line, without the newline")
	window := flag.Int64("window", 512, "credit mode: most lines printed ahead of the slowest subscriber's ack")
	rate := flag.Float64("rate", 0, "lines per second on a fixed schedule; 0 means credit mode")
	flag.Parse()
	if *subscribers < 1 || *lines < 1 || *window < 1 || *rate < 0 {
		fatalf("usage: producer --subscribers=N --lines=L [--size=B] [--window=W | --rate=R], all positive")
	}
	t := newTracker(*subscribers)
	go t.readInput(os.Stdin)

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	t.wait(func() bool { return t.joined == *subscribers })
	writeLine(out, []byte(fanout.Ready))
	flush(out)
	t.wait(func() bool { return t.started })
	if *rate > 0 {
		produceAtRate(out, t, *lines, *size, *rate)
	} else {
		produceOnCredit(out, t, *lines, *size, *window)
	}
	flush(out)
	select {} // readInput exits the process when stdin closes
}

// produceOnCredit prints lines 1 to n as fast as the window allows.
func produceOnCredit(out *bufio.Writer, t *tracker, n int64, size int, window int64) {
	line := make([]byte, 0, size+1)
	limit := window // the last line the current credit allows
	for seq := int64(1); seq <= n; seq++ {
		if seq > limit {
			flush(out)
			limit = t.waitCredit(seq, window)
		}
		t.printed.Store(seq) // before the line is out: an ack may follow at once
		line = fanout.AppendLine(line[:0], seq, time.Now().UnixNano(), size)
		writeLine(out, line)
	}
}

// produceAtRate prints lines 1 to n at rate lines a second, line seq at
// (seq-1)/rate seconds after the start, each flushed as soon as it is printed.
func produceAtRate(out *bufio.Writer, t *tracker, n int64, size int, rate float64) {
	line := make([]byte, 0, size+1)
	period := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for seq := int64(1); seq <= n; seq++ {
		time.Sleep(time.Until(start.Add(time.Duration(seq-1) * period)))
		t.printed.Store(seq)
		line = fanout.AppendLine(line[:0], seq, time.Now().UnixNano(), size)
		writeLine(out, line)
		flush(out)
	}
}

// writeLine writes line and a newline to out.
func writeLine(out *bufio.Writer, line []byte) {
	out.Write(line)
	out.WriteByte('\n') // errors surface in flush
}

// flush writes out what is buffered; a failed write means the server is gone.
func flush(out *bufio.Writer) {
	if err := out.Flush(); err != nil {
		fatalf("write stdout: %v", err)
	}
}

// fatalf reports a failure on stderr and exits 1.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "producer: "+format+"\n", args...)
	os.Exit(1)
}

// tracker is what the producer knows of its subscribers, from their
// messages. readInput is its only writer; the printing goroutine waits on
// it.
type tracker struct {
	printed atomic.Int64 // the last line printed, or about to be: for checking acks

	mu      sync.Mutex
	changed *sync.Cond // broadcast after every message
	said    []bool     // by subscriber id: said hello
	joined  int        // subscribers that said hello
	started bool       // go was said
	acked   []int64    // by subscriber id: the last line acknowledged
	atLine  map[int64]int
	slowest int64 // the lowest line in acked
}

// newTracker returns a tracker for n subscribers, none heard from yet.
func newTracker(n int) *tracker {
	t := &tracker{said: make([]bool, n), acked: make([]int64, n), atLine: map[int64]int{0: n}}
	t.changed = sync.NewCond(&t.mu)
	return t
}

// readInput applies every message from in until it ends, then exits the
// process: nobody is left to print to.
func (t *tracker) readInput(in io.Reader) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m, err := fanout.ParseMessage(sc.Bytes())
		if err != nil {
			fatalf("%v", err)
		}
		t.apply(m)
	}
	if err := sc.Err(); err != nil {
		fatalf("read stdin: %v", err)
	}
	os.Exit(0)
}

// apply records one message, or exits if it cannot be right.
func (t *tracker) apply(m fanout.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.changed.Broadcast()
	if m.Kind != fanout.Go && (m.ID < 0 || m.ID >= len(t.said)) {
		fatalf("%s from subscriber %d, but there are %d", m.Kind, m.ID, len(t.said))
	}
	switch m.Kind {
	case fanout.Go:
		t.started = true
	case "hello":
		if t.said[m.ID] {
			fatalf("subscriber %d said hello twice", m.ID)
		}
		t.said[m.ID] = true
		t.joined++
	case "ack":
		t.ack(m.ID, m.Seq)
	}
}

// ack moves subscriber id's acknowledgement to seq, and the slowest line
// with it. The subscribers are never more than a window apart, so atLine
// holds a handful of lines and finding the new lowest is cheap.
func (t *tracker) ack(id int, seq int64) {
	old := t.acked[id]
	if seq <= old || seq > t.printed.Load() {
		fatalf("subscriber %d acknowledged line %d after line %d, with %d printed", id, seq, old, t.printed.Load())
	}
	t.acked[id] = seq
	t.atLine[seq]++
	if t.atLine[old]--; t.atLine[old] > 0 {
		return
	}
	delete(t.atLine, old)
	if old == t.slowest {
		t.slowest = seq
		for line := range t.atLine {
			t.slowest = min(t.slowest, line)
		}
	}
}

// wait blocks until ready, which is called with the lock held, holds.
func (t *tracker) wait(ready func() bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for !ready() {
		t.changed.Wait()
	}
}

// waitCredit blocks until line seq is within window of the slowest
// subscriber, and returns the last line the credit then allows.
func (t *tracker) waitCredit(seq, window int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	for seq > t.slowest+window {
		t.changed.Wait()
	}
	return t.slowest + window
}
