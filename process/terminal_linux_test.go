package process

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTerminal is start with the child's stdout on a pseudo-terminal.
func startTerminal(t *testing.T, script string, grace time.Duration) *child {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	return startSpec(t, Spec{Path: sh, Args: []string{"-c", script}, Env: []string{"PATH=" + os.Getenv("PATH")},
		Grace: grace, TerminalStdout: true})
}

func TestTerminalStdoutIsATerminalWhileStdinAndStderrArePipes(t *testing.T) {
	t.Parallel()
	const script = `[ -t 0 ] && echo stdin-tty; [ -t 1 ] && echo stdout-tty; [ -t 2 ] && echo stderr-tty; echo end`
	cases := []struct {
		name     string
		terminal bool
		want     string // no "\r": the terminal adds nothing
	}{
		{"pipe", false, "end\n"},
		{"terminal", true, "stdout-tty\nend\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sh, _ := exec.LookPath("sh")
			p := startSpec(t, Spec{Path: sh, Args: []string{"-c", script}, TerminalStdout: c.terminal})
			if out, _ := p.finish(t, 5*time.Second); out != c.want {
				t.Errorf("stdout = %q, want %q", out, c.want)
			}
		})
	}
}

// terminalBytes is every byte value, then the ones a terminal's line
// discipline would act on, each alone and in the pairs it would rewrite.
func terminalBytes() []byte {
	var b []byte
	for i := range 256 {
		b = append(b, byte(i))
	}
	// "\n" (ONLCR), "\r" (ICRNL, IGNCR), ^D (EOF), ^C ^Z ^\ (signals),
	// ^S ^Q (flow control), ^V (literal next), DEL and ^U ^W (erase).
	return append(b, "\n\r\n\r\x04\x03\x1a\x1c\x13\x11\x16\x7f\x15\x17\x00\xff\xff\x00"...)
}

func TestTerminalStdoutPassesEveryByteAsWritten(t *testing.T) {
	t.Parallel()
	// Over 4 KiB, the line discipline's buffer, so that it takes several
	// reads; the last byte is no newline.
	want := bytes.Repeat(terminalBytes(), 100)
	file := filepath.Join(t.TempDir(), "bytes")
	if err := os.WriteFile(file, want, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startTerminal(t, "exec cat "+file, 0)
	out, _ := p.finish(t, 5*time.Second)
	if !bytes.Equal([]byte(out), want) {
		i := 0
		for i < len(out) && i < len(want) && out[i] == want[i] {
			i++
		}
		t.Fatalf("stdout has %d bytes, want %d; first difference at %d", len(out), len(want), i)
	}
	if !p.stdout.closed {
		t.Error("stdout's writer was not closed at the end of the output (EIO from the terminal)")
	}
	if got := p.Status().String(); got != "exit status 0" {
		t.Errorf("status = %q", got)
	}
}

func TestTerminalIsNotTheControllingTerminal(t *testing.T) {
	t.Parallel()
	p := startTerminal(t, "echo ready; exec sleep 30", 0)
	p.stdout.waitFor(t, "ready\n", 5*time.Second)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	// After the command name: state ppid pgrp session tty_nr ...
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	pgrp, _ := strconv.Atoi(fields[2])
	session, _ := strconv.Atoi(fields[3])
	ttyNr, _ := strconv.ParseUint(fields[4], 10, 64)
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/fd/1", p.Pid()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		t.Fatalf("the child's stdout is not a character device (mode %o)", st.Mode)
	}
	if pgrp != p.Pid() {
		t.Errorf("the child's process group is %d, want its own (%d)", pgrp, p.Pid())
	}
	if session == p.Pid() {
		t.Error("the child leads a session of its own: it could take the terminal as its controlling terminal")
	}
	// tty_nr and st_rdev both encode the device as the kernel's new_encode_dev.
	if ttyNr == st.Rdev {
		t.Errorf("the child's controlling terminal is its stdout (tty_nr %d)", ttyNr)
	}
	p.Stop()
	<-p.Done()
}

// gate is a stdout writer that takes nothing until opened, as a client that
// reads nothing.
type gate struct {
	open  chan struct{}
	mu    sync.Mutex
	bytes int
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bytes += len(p)
	return len(p), nil
}

func (g *gate) total() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bytes
}

func TestTerminalStdoutPausesAChildWhoseOutputIsNotTaken(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	sh, _ := exec.LookPath("sh")
	p, err := Start(Spec{Path: sh, Args: []string{"-c", fmt.Sprintf("head -c %d /dev/zero", size)},
		Env: []string{"PATH=" + os.Getenv("PATH")}, TerminalStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	out := &gate{open: make(chan struct{})}
	t.Cleanup(func() {
		p.Kill()
		<-p.Done()
	})
	fed := make(chan Status, 1)
	go func() { fed <- p.Feed(out, nil) }()
	time.Sleep(time.Second) // unpaused, head writes 8 MiB in a few ms
	select {
	case <-p.exited:
		t.Error("the child exited while its output was not taken: it was not paused")
	default:
	}
	close(out.open)
	select {
	case status := <-fed:
		if !status.Success() {
			t.Errorf("status = %v", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child not done 10 s after its output was taken")
	}
	if out.total() != size {
		t.Errorf("stdout's writer got %d bytes, want %d", out.total(), size)
	}
	assertGroupGone(t, p.Pid())
}

// The stop sequence and the end of the output work as with a pipe.
func TestTerminalStdoutKeepsTheStopSequence(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, script, wantStatus, wantOut string
		stop                              bool
		min                               time.Duration
	}{
		{"stdin-close-ends-cat", "exec cat", "exit status 0", "", true, 0},
		{"SIGINT-ignored", "trap '' INT; echo ready; exec sleep 30", "signal: terminated", "ready\n", true, stdinCloseWait + interruptWait},
		{"grandchild-holds-stdout", "(trap '' INT; echo from-grandchild; exec sleep 30) & sleep 0.05; printf leader-done",
			"exit status 0", "from-grandchild\nleader-done", false, stdinCloseWait},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := startTerminal(t, c.script, 0)
			time.Sleep(50 * time.Millisecond) // let sh set its traps
			begin := time.Now()
			if c.stop {
				p.Stop()
			}
			out, _ := p.finish(t, 3*time.Second)
			took := time.Since(begin)
			if got := p.Status().String(); got != c.wantStatus || out != c.wantOut {
				t.Errorf("status %q, stdout %q; want %q, %q", got, out, c.wantStatus, c.wantOut)
			}
			if took < c.min || took > c.min+time.Second {
				t.Errorf("output ended after %v, want %v plus a little", took, c.min)
			}
			assertGroupGone(t, p.Pid())
		})
	}
}

// ptyDescriptors counts this process's descriptors and those of them that
// are pseudo-terminals.
func ptyDescriptors(t *testing.T) (all, ptys int) {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if target == "/dev/ptmx" || strings.HasPrefix(target, "/dev/pts/") {
			ptys++
		}
	}
	return len(entries), ptys
}

func TestTerminalStdoutLeaksNoDescriptor(t *testing.T) {
	// Not parallel: the count is of the whole test process.
	before, ptysBefore := ptyDescriptors(t)
	for i := range 20 {
		script := "echo line; printf last"
		if i%2 == 1 {
			script = "exec sleep 30" // stopped rather than ending by itself
		}
		p := startTerminal(t, script, 0)
		if i%2 == 1 {
			p.Stop()
		}
		p.finish(t, 3*time.Second)
	}
	if after, ptys := ptyDescriptors(t); after != before || ptys != ptysBefore {
		t.Errorf("descriptors: %d before, %d after 20 children (pseudo-terminals: %d, %d)", before, after, ptysBefore, ptys)
	}
}
