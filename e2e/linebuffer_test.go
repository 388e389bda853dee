package e2e

// --linebuffer with unmodified programs that buffer output to a pipe, and
// everything that must not change under the flag.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// printedLineWithin is how late a line may arrive after the program printed
// it, under --linebuffer: before the program prints its next line, a second
// later. Buffered until the program exits, every line would arrive a second
// or more after it was printed, the last one included. (The 100 ms
// is what an idle machine does; a loaded one took 620 ms.)
const printedLineWithin = 800 * time.Millisecond

// answerWithin bounds the wait for each answer of a filter. Without
// --linebuffer the answers never come while the client stays: any bound
// proves the point, and a generous one keeps a loaded machine from failing.
const answerWithin = 3 * time.Second

// requireProgram skips the test when path is missing, or fails it under CI.
func requireProgram(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("needs %s (apt-get install %s)", path, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// writePython writes an executable python3 script into a temporary
// directory and returns its path.
func writePython(t *testing.T, body string) string {
	t.Helper()
	requireProgram(t, python, "python3")
	path := filepath.Join(t.TempDir(), "child.py")
	if err := os.WriteFile(path, []byte("#!"+python+"\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// printLate is a Python program that prints, with plain print() and no
// flush, the time of each print in nanoseconds, once a second.
const printLate = `import time
for i in range(4):
    print(time.time_ns())
    time.sleep(1)`

// lineDelays runs printLate behind wsgate with flags (and env in wsgate's
// environment) and returns how long after its print each line arrived.
func lineDelays(t *testing.T, env []string, flags ...string) []time.Duration {
	t.Helper()
	g := startGatewayEnv(t, env, append(flags, writePython(t, printLate))...)
	conn := dial(t, g.url("/"))
	var delays []time.Duration
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := conn.ReadMessage()
		arrived := time.Now()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("after %d lines: %v", len(delays), err)
			}
			break
		}
		printed, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			t.Fatalf("line %q is not a time", data)
		}
		delays = append(delays, arrived.Sub(time.Unix(0, printed)))
	}
	if len(delays) != 4 {
		t.Fatalf("got %d lines, want 4", len(delays))
	}
	return delays
}

func TestLinebuffer_PythonPrintArrivesWhenPrinted(t *testing.T) {
	t.Parallel()
	for i, d := range lineDelays(t, nil, "--linebuffer") {
		if d > printedLineWithin {
			t.Errorf("line %d arrived %v after it was printed, want within %v", i+1, d, printedLineWithin)
		}
	}
}

// Without the flag, the same program's lines wait in Python's buffer until
// it exits: what the test above would see if --linebuffer did nothing.
func TestLinebuffer_WithoutItPythonOutputArrivesAtExit(t *testing.T) {
	t.Parallel()
	if d := lineDelays(t, nil)[0]; d < time.Second {
		t.Errorf("without --linebuffer the first line arrived %v after it was printed, want at exit, 4 s later", d)
	}
}

// A shared process gets the terminal too.
func TestLinebuffer_BroadcastSharedProcessPrintArrivesWhenPrinted(t *testing.T) {
	t.Parallel()
	for i, d := range lineDelays(t, nil, "--broadcast", "--linebuffer") {
		if d > printedLineWithin {
			t.Errorf("line %d arrived %v after it was printed, want within %v", i+1, d, printedLineWithin)
		}
	}
}

// The README's other way: PYTHONUNBUFFERED passed through --passenv.
func TestLinebuffer_PythonUnbufferedPassedThroughPassenvWorksToo(t *testing.T) {
	t.Parallel()
	delays := lineDelays(t, []string{"PYTHONUNBUFFERED=1"}, "--passenv=PATH,LD_LIBRARY_PATH,PYTHONUNBUFFERED")
	for i, d := range delays {
		if d > printedLineWithin {
			t.Errorf("line %d arrived %v after it was printed, want within %v", i+1, d, printedLineWithin)
		}
	}
}

// Filters that read the client's lines and print answers with C stdio or
// Python's print(), unmodified: each answer comes before the next line is
// sent.
func TestLinebuffer_FiltersAnswerEachLineAtOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		command []string
		send    []string
		want    []string // "" for a line the filter drops
	}{
		{"grep", []string{"grep", "--invert-match", "skip"}, []string{"one", "skip me", "two"}, []string{"one", "", "two"}},
		{"sed", []string{"sed", "s/^/got: /"}, []string{"a", "b c"}, []string{"got: a", "got: b c"}},
		{"sed-at-the-end-of-a-pipeline", []string{"sh", "-c", `while IFS= read -r l; do echo "$l$l"; done | sed 's/^/piped: /'`},
			[]string{"x", "y"}, []string{"piped: xx", "piped: yy"}},
		{"python", []string{writePython(t, "import sys\nfor line in sys.stdin:\n    print(line.strip().upper())")},
			[]string{"hello", "world"}, []string{"HELLO", "WORLD"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, append([]string{"--linebuffer"}, c.command...)...)
			conn := dial(t, g.url("/"))
			for i, line := range c.send {
				send(t, conn, line)
				if c.want[i] == "" {
					continue
				}
				_ = conn.SetReadDeadline(time.Now().Add(answerWithin))
				_, data, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("no answer to %q within %v: %v", line, answerWithin, err)
				}
				if string(data) != c.want[i] {
					t.Fatalf("answer to %q is %q, want %q", line, data, c.want[i])
				}
			}
			if code := closeFromClient(t, conn, websocket.CloseNormalClosure, ""); code != websocket.CloseNormalClosure {
				t.Errorf("close answered with %d", code)
			}
		})
	}
}

// mawk, Debian's default awk, prints to a terminal a line at a time too.
func TestLinebuffer_AwkPrintsEachLineAsItGoes(t *testing.T) {
	t.Parallel()
	// A loop of about half a second between the lines (a pause by system()
	// or a command would flush by itself).
	g := startGateway(t, "--linebuffer", "awk", `BEGIN { print "first"; for (j = 0; j < 10000000; j++) x += j; print "second" }`)
	conn := dial(t, g.url("/"))
	receive(t, conn)
	first := time.Now()
	receive(t, conn)
	// Buffered, both lines would come in one write at the exit.
	if gap := time.Since(first); gap < 100*time.Millisecond {
		t.Errorf("the second line came %v after the first, want the time of the loop between them", gap)
	}
	expectClose(t, conn, websocket.CloseNormalClosure, "exit status 0")
}

func TestLinebuffer_BinaryModeIsByteExactBothWays(t *testing.T) {
	t.Parallel()
	var out []byte
	for i := range 20000 {
		out = append(out, byte(i), byte(i>>8), 0, 0xff, '\n', '\r', 0x04, 0x03, 0x7f)
	}
	file := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	in := bytes.Repeat([]byte{0, 0xff, '\r', '\n', 0x04, 0x1a}, 1000)
	// The child prints the file, then echoes what the client sends.
	g := startGateway(t, "--linebuffer", "--binary", "sh", "-c", `cat "$0"; exec cat`, file)
	conn := dial(t, g.url("/"))
	readBinary := func(n int) []byte {
		var got []byte
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(got) < n {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("after %d of %d bytes: %v", len(got), n, err)
			}
			if typ != websocket.BinaryMessage {
				t.Fatalf("message type %d, want binary", typ)
			}
			got = append(got, data...)
		}
		return got
	}
	if got := readBinary(len(out)); !bytes.Equal(got, out) {
		t.Fatalf("output changed on the way: %d bytes, want %d", len(got), len(out))
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, in); err != nil {
		t.Fatal(err)
	}
	if got := readBinary(len(in)); !bytes.Equal(got, in) {
		t.Fatalf("echo changed on the way: %d bytes, want %d", len(got), len(in))
	}
}

func TestLinebuffer_BackpressurePausesTheChildAndLosesNothing(t *testing.T) {
	t.Parallel()
	testBackpressure(t, "--linebuffer")
}

func TestLinebuffer_LastLineAndExitStatusReachTheClient(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, script string
		code         int
		reason       string
	}{
		{"exit-0", `echo one; printf 'last without newline'`, websocket.CloseNormalClosure, "exit status 0"},
		{"exit-3", `echo one; printf 'last without newline'; exit 3`, websocket.CloseInternalServerErr, "exit status 3"},
		{"killed", `echo one; printf 'last without newline'; kill -TERM $$`, websocket.CloseInternalServerErr, "signal: terminated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "--linebuffer", writeScript(t, c.script))
			msgs := expectClose(t, dial(t, g.url("/")), c.code, c.reason)
			if want := []string{"one", "last without newline"}; strings.Join(msgs, "|") != strings.Join(want, "|") {
				t.Errorf("messages %q, want %q", msgs, want)
			}
		})
	}
}

// descriptors lists pid's open descriptors by what they point to.
func descriptors(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		targets = append(targets, target)
	}
	return targets
}

// countTerminals counts the pseudo-terminals among descriptors.
func countTerminals(targets []string) int {
	n := 0
	for _, target := range targets {
		if target == "/dev/ptmx" || strings.HasPrefix(target, "/dev/pts/") {
			n++
		}
	}
	return n
}

// The stop sequence reaches the whole group, grandchildren that hold the
// terminal included, and nothing is left afterwards: no process, no
// descriptor.
func TestLinebuffer_ClientLeavingStopsTheGroupAndLeavesNothing(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `echo $$; (trap '' INT TERM; echo grandchild; exec sleep 30) & trap '' INT; exec sleep 31`)
	g := startGateway(t, "--linebuffer", script)
	before := descriptors(t, g.pid())
	if n := countTerminals(before); n != 0 {
		t.Fatalf("wsgate holds %d pseudo-terminals before any connection", n)
	}
	for i := range 3 {
		conn := dial(t, g.url("/"))
		pid := readPid(t, conn)
		if got := receive(t, conn); got != "grandchild" {
			t.Fatalf("got %q, want the grandchild's line", got)
		}
		if n := len(childrenOf(g.pid())); n != 1 {
			t.Fatalf("wsgate has %d children, want 1", n)
		}
		if n := countTerminals(descriptors(t, g.pid())); n != 1 {
			t.Errorf("wsgate holds %d pseudo-terminals for one session, want 1 (the master)", n)
		}
		if i%2 == 0 {
			closeFromClient(t, conn, websocket.CloseNormalClosure, "")
		} else {
			conn.Close() // dropped
		}
		// SIGINT ignored by all, SIGTERM by the grandchild: SIGKILL ends it.
		waitGroupGone(t, pid, 3*time.Second)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		after := descriptors(t, g.pid())
		if len(after) == len(before) && countTerminals(after) == 0 && len(childrenOf(g.pid())) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the sessions ended, wsgate has %d descriptors (%d before), %d pseudo-terminals, %d children:\n%s",
				len(after), len(before), countTerminals(after), len(childrenOf(g.pid())), strings.Join(after, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
