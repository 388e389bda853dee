package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// httpGet fetches url (at most 5 s) and returns the status and body.
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape is one reading of /metrics, parsed as Prometheus parses it.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t testing.TB, addr string) scrape {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, body)
	}
	return families
}

// value returns the value of name's series with exactly the given labels
// ("k=v" pairs), and whether there is one. A histogram's value is its count.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	family, ok := s[name]
	if !ok {
		return 0, false
	}
	for _, m := range family.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		if strings.Join(got, ",") != strings.Join(labels, ",") {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// expect checks one series' value.
func (s scrape) expect(t testing.TB, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := s.value(name, labels...)
	if !ok || got != want {
		t.Errorf("%s{%s} = %v (present %v), want %v", name, strings.Join(labels, ","), got, ok, want)
	}
}

// waitMetric scrapes until name{labels} has the value want (at most 5 s).
func waitMetric(t testing.TB, addr string, want float64, name string, labels ...string) scrape {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := scrapeMetrics(t, addr)
		if got, ok := s.value(name, labels...); ok && got == want {
			return s
		}
		if time.Now().After(deadline) {
			s.expect(t, want, name, labels...)
			t.FailNow()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetrics_EveryMetricCountsRealTraffic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{"echo.sh": "exec cat", "fail.sh": "exit 3"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "plain.sh"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	g := startGateway(t, "--metrics="+metricsAddr, "--maxforks=3", "--dir="+dir)

	// A command that fails, one that cannot start, refusals.
	expectClose(t, dial(t, g.url("/fail.sh")), websocket.CloseInternalServerErr, "exit status 3")
	readUntilClose(dial(t, g.url("/plain.sh")), 5*time.Second)
	refusedWith(t, g.url("/missing.sh"), nil, http.StatusNotFound)
	refusedWith(t, g.url("/echo.sh"), http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden)
	badHandshake(t, g.addr)
	waitMetric(t, metricsAddr, 1, "wsgate_connections_total", "code=1011", "endpoint=/plain.sh")

	// Three connections to echo.sh, messages both ways.
	sent := []string{"one", "two", "three", "héllo"}
	var bytesIn float64
	a, b, c := dial(t, g.url("/echo.sh")), dial(t, g.url("/echo.sh/more?x=1")), dial(t, g.url("/echo.sh"))
	for _, m := range sent {
		send(t, a, m)
		if got := receive(t, a); got != m {
			t.Fatalf("echo %q, want %q", got, m)
		}
		bytesIn += float64(len(m))
	}
	send(t, b, "b")
	receive(t, b)
	s := waitMetric(t, metricsAddr, 3, "wsgate_children", "endpoint=/echo.sh")
	s.expect(t, 3, "wsgate_connections", "endpoint=/echo.sh")

	// Over --maxforks: refused with 1013, and counted as such.
	over := dial(t, g.url("/echo.sh"))
	expectClose(t, over, websocket.CloseTryAgainLater, "too many connections")
	closeFromClient(t, a, websocket.CloseNormalClosure, "")
	closeFromClient(t, b, 4000, "done")
	closeFromClient(t, c, websocket.CloseNormalClosure, "")

	waitMetric(t, metricsAddr, 0, "wsgate_children", "endpoint=/echo.sh")
	s = waitMetric(t, metricsAddr, 0, "wsgate_connections", "endpoint=/echo.sh")
	s.expect(t, 2, "wsgate_connections_total", "code=1000", "endpoint=/echo.sh")
	s.expect(t, 1, "wsgate_connections_total", "code=other", "endpoint=/echo.sh") // a code the client chose
	s.expect(t, 1, "wsgate_connections_total", "code=1013", "endpoint=/echo.sh")
	s.expect(t, 1, "wsgate_connections_total", "code=1011", "endpoint=/fail.sh")
	s.expect(t, 3, "wsgate_child_starts_total", "endpoint=/echo.sh")
	s.expect(t, 1, "wsgate_child_starts_total", "endpoint=/fail.sh")
	s.expect(t, 1, "wsgate_child_start_failures_total", "endpoint=/plain.sh")
	s.expect(t, float64(len(sent)+1), "wsgate_messages_total", "direction=in", "endpoint=/echo.sh")
	s.expect(t, float64(len(sent)+1), "wsgate_messages_total", "direction=out", "endpoint=/echo.sh")
	s.expect(t, bytesIn+1, "wsgate_bytes_total", "direction=in", "endpoint=/echo.sh")
	s.expect(t, bytesIn+1, "wsgate_bytes_total", "direction=out", "endpoint=/echo.sh")
	s.expect(t, 4, "wsgate_session_duration_seconds", "endpoint=/echo.sh")
	s.expect(t, 1, "wsgate_session_duration_seconds", "endpoint=/fail.sh")
	for reason, want := range map[string]float64{"origin": 1, "not_found": 1, "limit": 1, "shutdown": 0, "bad_request": 1} {
		s.expect(t, want, "wsgate_handshakes_refused_total", "reason="+reason)
	}
	s.expect(t, 1, "wsgate_build_info", "commit="+versionCommit(t), "goversion="+runtime.Version(), "version="+mainVersion(t))
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_open_fds", "process_resident_memory_bytes"} {
		if _, ok := s[name]; !ok {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	for name := range s {
		if strings.HasPrefix(name, "wsgate_") && s[name].GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}

	// The main port serves none of it.
	for _, path := range []string{"/metrics", "/healthz"} {
		if code, body := httpGet(t, "http://"+g.addr+path); code == http.StatusOK || strings.Contains(body, "wsgate_") {
			t.Errorf("main port %s: %d %.60q, want no metrics there", path, code, body)
		}
	}
}

// refusedWith dials url with header and checks the handshake is refused
// with status.
func refusedWith(t *testing.T, url string, header http.Header, status int) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, header)
	if err == nil {
		conn.Close()
		t.Fatalf("%s: handshake completed, want %d", url, status)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("%s: %v (%v), want %d", url, err, resp, status)
	}
	resp.Body.Close()
}

// badHandshake sends an upgrade request without a key and expects 400.
func badHandshake(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No Sec-WebSocket-Key. The Host is the gateway's own, which its
	// loopback-only listener accepts.
	fmt.Fprintf(c, "GET /echo.sh HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400") {
		t.Errorf("bad handshake answered %q, want 400", buf[:n])
	}
}

func TestMetrics_HealthzIsOKWhileServingAnd503OnceShutdownBegins(t *testing.T) {
	t.Parallel()
	// A child that ignores SIGINT and SIGTERM and takes a second to exit
	// once its stdin closes holds the drain that long, well within the stop
	// sequence's bound (SIGKILL after 850 ms + 3 x 1 s).
	script := writeScript(t, `trap '' INT TERM; echo up; read -r x; sleep 1`)
	metricsAddr := freeAddr(t)
	g := startGateway(t, "--metrics="+metricsAddr, "--closems=1000", script)
	if code, body := httpGet(t, "http://"+metricsAddr+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("/healthz while serving: %d %q, want 200 ok", code, body)
	}
	conn := dial(t, g.url("/"))
	if got := receive(t, conn); got != "up" {
		t.Fatalf("first message %q", got)
	}
	g.stop(syscall.SIGTERM)
	g.waitLog(5*time.Second, "shutting down", nil)
	code, body := httpGet(t, "http://"+metricsAddr+"/healthz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("/healthz after shutdown began: %d %q, want 503", code, body)
	}
	if _, ok := scrapeMetrics(t, metricsAddr)["wsgate_connections"]; !ok {
		t.Error("/metrics is not served while draining")
	}
	expectClose(t, conn, websocket.CloseGoingAway, "server shutting down")
	if code, _ := g.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

func TestMetrics_AddressMustBeHostAndPort(t *testing.T) {
	t.Parallel()
	expectUsageError(t, []string{"--metrics=9090", "cat"}, "--metrics=9090", "HOST:PORT")
}
