package e2e

// The series a dashboard needs beyond the traffic counters (issue 21): how
// programs ended, their stderr lines, the time to the first message, the
// configured limits, the commit, and every endpoint's series from the start.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// scriptDir writes each body as an executable sh script named by its key
// into a temporary directory, for --dir, and returns the directory.
func scriptDir(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMetrics_ProgramExitsAreCountedByBoundedStatus(t *testing.T) {
	t.Parallel()
	dir := scriptDir(t, map[string]string{
		"three.sh":   "exit 3",
		"big.sh":     "exit 200",      // above the told codes: "other"
		"killed.sh":  "kill -KILL $$", // a signal told by name
		"usr1.sh":    "kill -USR1 $$", // one that is not: "signal"
		"echo.sh":    "exec cat",      // ends with 0 once the client leaves
		"signals.sh": "kill -TERM $$",
	})
	metricsAddr := freeAddr(t)
	g := startGateway(t, "--metrics="+metricsAddr, "--dir="+dir)
	for _, path := range []string{"/three.sh", "/three.sh", "/big.sh", "/killed.sh", "/usr1.sh", "/signals.sh"} {
		readUntilClose(dial(t, g.url(path)), 5*time.Second)
	}
	closeFromClient(t, dial(t, g.url("/echo.sh")), websocket.CloseNormalClosure, "")

	s := waitMetric(t, metricsAddr, 1, "wsgate_program_exits_total", "endpoint=/echo.sh", "status=0")
	s.expect(t, 2, "wsgate_program_exits_total", "endpoint=/three.sh", "status=3")
	s.expect(t, 1, "wsgate_program_exits_total", "endpoint=/big.sh", "status=other")
	s.expect(t, 1, "wsgate_program_exits_total", "endpoint=/killed.sh", "status=SIGKILL")
	s.expect(t, 1, "wsgate_program_exits_total", "endpoint=/signals.sh", "status=SIGTERM")
	s.expect(t, 1, "wsgate_program_exits_total", "endpoint=/usr1.sh", "status=signal")
	told := regexp.MustCompile(`^([0-8]|other|signal|SIG[A-Z]+)$`)
	for _, m := range s["wsgate_program_exits_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "status" && !told.MatchString(l.GetValue()) {
				t.Errorf("status label %q is outside the bounded set", l.GetValue())
			}
		}
	}
}

func TestMetrics_StderrLinesAndFirstMessagePerEndpoint(t *testing.T) {
	t.Parallel()
	dir := scriptDir(t, map[string]string{
		"noisy.sh": "echo a >&2; echo b >&2; printf 'c' >&2; echo ready; exec cat",
		"quiet.sh": "echo ready; exec cat",
	})
	metricsAddr := freeAddr(t)
	g := startGateway(t, "--metrics="+metricsAddr, "--dir="+dir)
	for _, path := range []string{"/noisy.sh", "/quiet.sh", "/noisy.sh"} {
		c := dial(t, g.url(path))
		if got := receive(t, c); got != "ready" {
			t.Fatalf("%s: first message %q, want ready", path, got)
		}
		send(t, c, "more") // a second message is not a first one
		receive(t, c)
		closeFromClient(t, c, websocket.CloseNormalClosure, "")
	}
	s := waitMetric(t, metricsAddr, 6, "wsgate_stderr_lines_total", "endpoint=/noisy.sh")
	s.expect(t, 0, "wsgate_stderr_lines_total", "endpoint=/quiet.sh")
	s.expect(t, 2, "wsgate_first_message_seconds", "endpoint=/noisy.sh")
	s.expect(t, 1, "wsgate_first_message_seconds", "endpoint=/quiet.sh")
	for _, m := range s["wsgate_first_message_seconds"].GetMetric() {
		if h := m.GetHistogram(); h.GetSampleSum() <= 0 || h.GetSampleSum() > 10*float64(h.GetSampleCount()) {
			t.Errorf("first messages after %v s in all for %d connections, want a time, each under 10 s", h.GetSampleSum(), h.GetSampleCount())
		}
	}
}

func TestMetrics_LimitsAreGaugesOfTheFlags(t *testing.T) {
	t.Parallel()
	metricsAddr := freeAddr(t)
	startGateway(t, "--metrics="+metricsAddr, "--maxconns=40", "--maxforks=30", "--maxconnsperip=5", "--ratelimit=7.5",
		"--maxframesize=2048", "--maxlinesize=4096", "--queue=64", "--maxlifetime=2h", "--idletimeout=10m", "cat")
	s := scrapeMetrics(t, metricsAddr)
	for name, want := range map[string]float64{
		"wsgate_limit_connections": 40, "wsgate_limit_forks": 30, "wsgate_limit_connections_per_address": 5,
		"wsgate_limit_handshake_rate": 7.5, "wsgate_limit_message_bytes": 2048, "wsgate_limit_line_bytes": 4096,
		"wsgate_limit_queue_messages": 64, "wsgate_limit_lifetime_seconds": 7200, "wsgate_limit_idle_seconds": 600,
	} {
		s.expect(t, want, name)
	}

	// Unset, they are the defaults --help names: 0 for unlimited.
	metricsAddr = freeAddr(t)
	startGateway(t, "--metrics="+metricsAddr, "cat")
	s = scrapeMetrics(t, metricsAddr)
	s.expect(t, 0, "wsgate_limit_connections")
	s.expect(t, 1024, "wsgate_limit_forks")
	s.expect(t, 1<<20, "wsgate_limit_message_bytes")
}

// A binary built as scripts/package builds it, with the commit set by
// -ldflags, names that commit in wsgate_build_info and in --version.
func TestMetrics_BuildInfoNamesTheCommitItWasBuiltFrom(t *testing.T) {
	t.Parallel()
	const commit = "0123abcd-e2e"
	bin := filepath.Join(t.TempDir(), "wsgate")
	build := exec.Command("go", "build", "-ldflags", "-X main.commit="+commit, "-o", bin, "github.com/wsgate/wsgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.Contains(string(out), "(commit "+commit+",") {
		t.Errorf("--version: %q, %v; want commit %s", out, err, commit)
	}
	metricsAddr := freeAddr(t)
	startBinary(t, bin, nil, "--metrics="+metricsAddr, "cat")
	s := scrapeMetrics(t, metricsAddr)
	s.expect(t, 1, "wsgate_build_info", "commit="+commit, "goversion="+runtime.Version(), "version="+mainVersion(t))
	if n := len(s["wsgate_build_info"].GetMetric()); n != 1 {
		t.Errorf("wsgate_build_info: %d series, want 1", n)
	}
}

// versionCommit returns the commit wsgate --version names.
func versionCommit(t testing.TB) string {
	t.Helper()
	out, _, code := runCLI(t, nil, "--version")
	m := regexp.MustCompile(`\(commit ([^,]+),`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("--version: %d %q, want the commit", code, out)
	}
	return m[1]
}

func TestMetrics_EveryEndpointHasSeriesBeforeItsFirstConnection(t *testing.T) {
	t.Parallel()
	dir := scriptDir(t, map[string]string{"idle.sh": "exec cat", "sub/deep.sh": "exec cat"})
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a script\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	startGateway(t, "--metrics="+metricsAddr, "--dir="+dir)
	s := scrapeMetrics(t, metricsAddr)
	for _, endpoint := range []string{"/idle.sh", "/sub/deep.sh"} {
		for _, name := range []string{"wsgate_connections", "wsgate_children", "wsgate_child_starts_total", "wsgate_child_start_failures_total",
			"wsgate_stderr_lines_total", "wsgate_first_message_seconds", "wsgate_session_duration_seconds"} {
			s.expect(t, 0, name, "endpoint="+endpoint)
		}
		s.expect(t, 0, "wsgate_messages_total", "direction=in", "endpoint="+endpoint)
		s.expect(t, 0, "wsgate_bytes_total", "direction=out", "endpoint="+endpoint)
	}
	if strings.Contains(strings.Join(seriesEndpoints(s), " "), "/notes.txt") {
		t.Error("a file that is not executable is an endpoint")
	}

	// A single command is the endpoint "/".
	metricsAddr = freeAddr(t)
	startGateway(t, "--metrics="+metricsAddr, "cat")
	scrapeMetrics(t, metricsAddr).expect(t, 0, "wsgate_child_starts_total", "endpoint=/")
}

// seriesEndpoints returns the endpoint label of every series in s.
func seriesEndpoints(s scrape) []string {
	var endpoints []string
	for _, family := range s {
		for _, m := range family.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" {
					endpoints = append(endpoints, l.GetValue())
				}
			}
		}
	}
	return endpoints
}
