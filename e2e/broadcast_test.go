package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Broadcast mode under load: one producer, clients that read and clients
// that do not. The contract (DESIGN section 8): a client whose queue is full
// is closed with 1013 after a gap-free run of the stream, never holding back
// the process or the others, and memory stays bounded by the queues.
func TestBroadcast_NonReadingClientsKeepMemoryBoundedAndReadersGetEveryLine(t *testing.T) {
	const (
		lines   = 50000 // of 1000 bytes with the newline: 50 MB
		padding = 990
		idle    = 100
		readers = 2
		chunk   = 500 // lines between the readers' acks
	)
	// The producer writes 500 lines, then waits for each reader to say it
	// has them ("ack", to the shared stdin): the readers set its pace,
	// however short of CPU a loaded machine leaves them, so that a reader is
	// never more than 500 lines behind and never too slow. The silent
	// clients set nothing: were they to hold the process back, the readers
	// would wait in vain.
	// (The shell reads the acks: awk would wait to fill its buffer.)
	script := writeScript(t, fmt.Sprintf(`read -r go; c=0
		while [ $c -lt %d ]; do
			awk -v from=$((c * %d + 1)) -v to=$(((c + 1) * %d)) 'BEGIN { p = sprintf("%%%ds", ""); gsub(/ /, "x", p);
				for (i = from; i <= to; i++) printf "%%08d %%s\n", i, p }'
			c=$((c + 1))
			if [ $c -lt %d ]; then k=0; while [ $k -lt %d ]; do read -r ack || exit 1; k=$((k + 1)); done; fi
		done`, lines/chunk, chunk, chunk, padding, lines/chunk, readers))
	const queue = 8192
	// A binary without the race detector, whose memory would dwarf the queues.
	g := startPlainGateway(t, "--broadcast", fmt.Sprintf("--queue=%d", queue), script)
	before := memoryKB(t, g.pid(), "VmRSS")

	reading := make([]*websocket.Conn, readers)
	for i := range reading {
		reading[i] = dial(t, g.url("/"))
	}
	silent := make([]*websocket.Conn, idle)
	for i := range silent {
		silent[i] = dial(t, g.url("/"))
	}
	send(t, reading[0], "go")

	want := strings.Repeat("x", padding)
	var wg sync.WaitGroup
	for r, conn := range reading {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = conn.SetReadDeadline(time.Now().Add(120 * time.Second))
			for i := 1; i <= lines; i++ {
				_, data, err := conn.ReadMessage()
				if err != nil {
					t.Errorf("reader %d: after %d of %d lines: %v", r, i-1, lines, err)
					return
				}
				if string(data) != floodLine(i, want) {
					t.Errorf("reader %d: line %d is %.20q...", r, i, data)
					return
				}
				if i%chunk == 0 && i < lines {
					_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
					if err := conn.WriteMessage(websocket.TextMessage, []byte("ack")); err != nil {
						t.Errorf("reader %d: ack after line %d: %v", r, i, err)
						return
					}
				}
			}
			expectClose(t, conn, websocket.CloseNormalClosure, "exit status 0")
		}()
	}
	wg.Wait()

	grownKB := memoryKB(t, g.pid(), "VmHWM") - before
	t.Logf("wsgate's peak RSS grew by %d kB with %d clients that read nothing of a %d MB stream", grownKB, idle, lines/1000)
	// The queues hold up to 8 MB of shared lines, and pointers to them (64 KB
	// a client); each silent client's drainer, blocked on its full socket,
	// two batches at most (128 KB): with the garbage collector's headroom,
	// some 50 MB. Unbounded, it would be 50 MB for each of the 100 clients.
	const limitKB = 64 * 1024
	if grownKB >= limitKB {
		t.Errorf("wsgate's peak RSS grew by %d kB, want under %d kB", grownKB, limitKB)
	}

	// Each silent client got a gap-free start of the stream, then 1013.
	for i, conn := range silent {
		msgs, ce, err := readUntilClose(conn, 20*time.Second)
		if err != nil || ce == nil || ce.Code != websocket.CloseTryAgainLater || ce.Text != "client too slow" {
			t.Fatalf("silent client %d: after %d lines: close %v, %v; want 1013 client too slow", i, len(msgs), ce, err)
		}
		for j, m := range msgs {
			if m != floodLine(j+1, want) {
				t.Fatalf("silent client %d: line %d is %.20q...: a gap", i, j+1, m)
			}
		}
	}
	if n := len(logLines(g.logs(), "client too slow; closing")); n != idle {
		t.Errorf("%d clients logged as too slow, want %d", n, idle)
	}
}
