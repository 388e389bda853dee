package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// Backpressure output: numbered lines of exactly 1000 bytes with the newline,
// 52 MB in all.
const (
	floodLines   = 52000
	floodPadding = 990 // "%08d " + padding + "\n" = 1000 bytes
)

// floodLine is line i as the flood script prints it, without its newline.
func floodLine(i int, padding string) string { return fmt.Sprintf("%08d %s", i, padding) }

// memoryKB returns a "kB" field of /proc/PID/status, such as VmRSS or VmHWM.
func memoryKB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s: %q: %v", field, rest, err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestBackpressure_SlowReaderPausesChildWithBoundedMemoryAndLosesNothing(t *testing.T) {
	t.Parallel()
	testBackpressure(t)
}

// testBackpressure floods a client that reads nothing for 5 s through wsgate
// run with flags, then reads it all.
func testBackpressure(t *testing.T, flags ...string) {
	script := writeScript(t, fmt.Sprintf(
		`echo $$; exec awk 'BEGIN { p = sprintf("%%%ds", ""); gsub(/ /, "x", p); for (i = 1; i <= %d; i++) printf "%%08d %%s\n", i, p }'`,
		floodPadding, floodLines))
	g := startGateway(t, append(flags, script)...)
	before := memoryKB(t, g.pid(), "VmRSS")

	conn := dial(t, g.url("/"))
	pid := readPid(t, conn)
	time.Sleep(5 * time.Second) // the client reads nothing

	// Unpaused, awk writes 52 MB in well under a second and exits; still
	// running, it is blocked on the full pipe.
	alive := false
	for _, p := range testrun.GroupMembers(pid) {
		alive = alive || p.Pid == pid && p.State != "Z"
	}
	if !alive {
		t.Errorf("the child exited while the client read nothing: its output was buffered, not paused")
	}
	const limitKB = 50 * 1024
	grown := memoryKB(t, g.pid(), "VmHWM") - before
	t.Logf("wsgate's peak RSS grew by %d kB while the client read nothing", grown)
	if grown >= limitKB {
		t.Errorf("wsgate's peak RSS grew by %d kB while the client read nothing, want under %d kB", grown, limitKB)
	}

	padding := strings.Repeat("x", floodPadding)
	for i := 1; i <= floodLines; i++ {
		// Each line within 10 s of the one before: a bound on progress, not
		// on the whole transfer, which a loaded machine may take long over.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d lines: %v", i-1, floodLines, err)
		}
		if want := floodLine(i, padding); string(data) != want {
			t.Fatalf("line %d is %.20q... (%d bytes), want %.20q... (%d bytes)", i, data, len(data), want, len(want))
		}
	}
	expectClose(t, conn, websocket.CloseNormalClosure, "exit status 0")
	if grown := memoryKB(t, g.pid(), "VmHWM") - before; grown >= limitKB {
		t.Errorf("wsgate's peak RSS grew by %d kB over the whole transfer, want under %d kB", grown, limitKB)
	}
	waitGroupGone(t, pid, 2*time.Second)
}
