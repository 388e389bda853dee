// Package testrun holds what wsgate's tests share: building the real binary
// once per test package, a buffer safe to log into from several goroutines,
// and a look at which processes are left in a process group.
package testrun

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// buildTimeout bounds building the binary.
const buildTimeout = 5 * time.Minute

// ProcessGoroutines are goleak's options for the goroutines package process
// keeps for the program's life, once it has started a child: the Linux
// backend's fork thread, the portable backend's exit watch.
var ProcessGoroutines = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/wsgate/wsgate/process.runForks"),
	goleak.IgnoreAnyFunction("github.com/wsgate/wsgate/process.(*exitWatch).reapAsTheyExit"),
}

// binDir holds the binaries Main and PlainBinary build.
var binDir string

// Main builds wsgate with the race detector, sets *bin to the binary's path,
// runs the package's tests under goleak, removes the binary, and exits.
// Call it from TestMain. When no test is to run (-run '^$', as scripts/test
// fuzzes) and in a fuzzing worker, nothing is built: the fuzz targets do not
// need the binary, and each worker would build it again.
func Main(m *testing.M, bin *string) {
	flag.Parse()
	if !needsBinary() {
		goleak.VerifyTestMain(m)
		return
	}
	dir, err := os.MkdirTemp("", "wsgate-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testrun:", err)
		os.Exit(1)
	}
	binDir = dir
	*bin = filepath.Join(dir, "wsgate")
	if err := build(*bin, "-race"); err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "testrun: building wsgate:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(removingDir{m, dir})
}

// needsBinary reports whether the tests that are to run may need the binary.
func needsBinary() bool {
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return false
	}
	f := flag.Lookup("test.run")
	return f == nil || f.Value.String() != "^$"
}

func build(bin string, flags ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if PortableBackend { // the binary's backend is the tests'
		flags = append(flags, "-tags", "wsgate_portable")
	}
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/wsgate/wsgate")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

// PlainBinary builds wsgate without the race detector, once, next to Main's
// binary, and returns its path: for tests that measure memory, which the
// race detector's shadow memory would dwarf.
func PlainBinary(t testing.TB) string {
	t.Helper()
	plainOnce.Do(func() {
		plainBin = filepath.Join(binDir, "wsgate-plain")
		plainErr = build(plainBin)
	})
	if plainErr != nil {
		t.Fatalf("building wsgate without the race detector: %v", plainErr)
	}
	return plainBin
}

// removingDir runs the tests, then removes the binary's directory, before
// goleak looks for leaked goroutines and exits.
type removingDir struct {
	*testing.M
	dir string
}

// Run runs the tests, then removes the directory.
func (r removingDir) Run() int {
	defer os.RemoveAll(r.dir)
	return r.M.Run()
}

// Buffer is a bytes.Buffer safe for writers and readers in several
// goroutines, for logs the tests read while they are written.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Proc is one process as /proc shows it.
type Proc struct {
	Pid, PPid, Pgid int
	State           string // "Z" for a zombie
	Comm            string
}

// Processes lists every process, zombies included.
func Processes() []Proc {
	var procs []Proc
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		open, close := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || close < open {
			continue
		}
		// After the command name: state ppid pgrp ...
		fields := strings.Fields(string(stat[close+1:]))
		if len(fields) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		pgid, _ := strconv.Atoi(fields[2])
		procs = append(procs, Proc{Pid: pid, PPid: ppid, Pgid: pgid, State: fields[0], Comm: string(stat[open+1 : close])})
	}
	return procs
}

// GroupMembers lists the processes of group pgid, zombies included. With
// the portable backend, which is no subreaper, the zombies orphaned to init
// are left out: they are dead, and reaping them is init's (an init that
// does not reap, as in some containers, keeps them).
func GroupMembers(pgid int) []Proc {
	var members []Proc
	for _, p := range Processes() {
		if PortableBackend && p.State == "Z" && p.PPid == 1 {
			continue
		}
		if p.Pgid == pgid {
			members = append(members, p)
		}
	}
	return members
}

// WaitGroupGone waits at most timeout until no process, zombie or not, is
// left in process group pgid, and fails the test otherwise.
func WaitGroupGone(t testing.TB, pgid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := GroupMembers(pgid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process group %d still has %+v after %v", pgid, left, timeout)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ListensOn reports whether process pid holds a TCP socket listening on
// port (IPv4 or IPv6). A connection accepted on a port picked beforehand
// may be another process's, one that took the port between the pick and
// the server's own bind: tests that share a machine see it happen.
func ListensOn(pid, port int) bool {
	inodes := listeningInodes(port)
	if len(inodes) == 0 {
		return false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
			return true
		}
	}
	return false
}

// listeningInodes returns the inodes of the TCP sockets listening on port,
// from /proc/net/tcp and /proc/net/tcp6.
func listeningInodes(port int) map[string]bool {
	inodes := map[string]bool{}
	suffix := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) > 9 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
				inodes[f[9]] = true
			}
		}
	}
	return inodes
}
