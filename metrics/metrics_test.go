package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/process"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// The table of DESIGN.md section 7: every metric, its type and its labels.
func TestEveryMetricOfTheDesignIsServedWithItsLabels(t *testing.T) {
	t.Parallel()
	m := New(Build{Version: "1.2.3", Commit: "abc123"})
	m.ConnectionOpened("/a.sh")
	m.ConnectionClosed("/a.sh", 1000, 1500*time.Millisecond)
	m.ChildStarted("/a.sh")
	m.ChildEnded("/a.sh", process.Status{Code: 200})
	m.FirstMessage("/a.sh", 20*time.Millisecond)
	m.StderrLine("/a.sh")
	m.ChildStartFailed("/a.sh")
	m.Messages("/a.sh", observe.In, 2, 10)
	m.Messages("/a.sh", observe.Out, 3, 30)
	m.HandshakeRefused(observe.RefusedOrigin)
	m.SlowClient("/a.sh")
	m.BroadcastSubscribers("/a.sh", 2)
	m.BroadcastSubscribers("/a.sh", -1)

	code, body := get(t, m.Handler(func() error { return nil }), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"wsgate_connections":                "GAUGE endpoint",
		"wsgate_connections_total":          "COUNTER code,endpoint",
		"wsgate_children":                   "GAUGE endpoint",
		"wsgate_child_starts_total":         "COUNTER endpoint",
		"wsgate_child_start_failures_total": "COUNTER endpoint",
		"wsgate_messages_total":             "COUNTER direction,endpoint",
		"wsgate_bytes_total":                "COUNTER direction,endpoint",
		"wsgate_handshakes_refused_total":   "COUNTER reason",
		"wsgate_session_duration_seconds":   "HISTOGRAM endpoint",
		"wsgate_broadcast_subscribers":      "GAUGE endpoint",
		"wsgate_slow_clients_total":         "COUNTER endpoint",
		"wsgate_build_info":                 "GAUGE commit,goversion,version",
		"wsgate_program_exits_total":        "COUNTER endpoint,status",
		"wsgate_stderr_lines_total":         "COUNTER endpoint",
		"wsgate_first_message_seconds":      "HISTOGRAM endpoint",
	}
	for name, typeAndLabels := range want {
		f, ok := families[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		sort.Strings(labels)
		if got := f.GetType().String() + " " + strings.Join(labels, ","); got != typeAndLabels {
			t.Errorf("%s: %s, want %s", name, got, typeAndLabels)
		}
	}
	for _, line := range []string{
		`wsgate_broadcast_subscribers{endpoint="/a.sh"} 1`,
		`wsgate_slow_clients_total{endpoint="/a.sh"} 1`,
		`wsgate_handshakes_refused_total{reason="limit"} 0`,
		`wsgate_build_info{commit="abc123",goversion="` + runtime.Version() + `",version="1.2.3"} 1`,
		`wsgate_program_exits_total{endpoint="/a.sh",status="other"} 1`,
		`wsgate_stderr_lines_total{endpoint="/a.sh"} 1`,
		`wsgate_first_message_seconds_bucket{endpoint="/a.sh",le="0.025"} 1`,
		`wsgate_session_duration_seconds_sum{endpoint="/a.sh"} 1.5`,
		`wsgate_messages_total{direction="out",endpoint="/a.sh"} 3`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("no line %s", line)
		}
	}
}

func TestHealthzSaysOKOnlyWhileHealthy(t *testing.T) {
	t.Parallel()
	var draining atomic.Bool
	h := New(Build{Version: "x"}).Handler(func() error {
		if draining.Load() {
			return errors.New("shutting down")
		}
		return nil
	})
	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("healthy: %d %q, want 200 ok", code, body)
	}
	draining.Store(true)
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable || body != "shutting down" {
		t.Errorf("draining: %d %q, want 503 saying why", code, body)
	}
	if code, _ := get(t, h, "/"); code != http.StatusNotFound {
		t.Errorf("/: %d, want 404", code)
	}
}

// fakeBus is a Bus with set figures.
type fakeBus struct{ up bool }

func (b fakeBus) BusUp() bool       { return b.up }
func (fakeBus) LeadingStreams() int { return 2 }
func (fakeBus) Takeovers() uint64   { return 3 }
func (fakeBus) ErrorCounts() map[string]uint64 {
	return map[string]uint64{"unreachable": 4, "lease_lost": 0}
}

func TestBusSeriesShowWhatTheBusSays(t *testing.T) {
	t.Parallel()
	m := New(Build{Version: "x"})
	m.WatchBus(fakeBus{up: true})
	_, body := get(t, m.Handler(func() error { return nil }), "/metrics")
	for _, line := range []string{
		"wsgate_bus_up 1", "wsgate_bus_leading_streams 2", "wsgate_bus_takeovers_total 3",
		`wsgate_bus_errors_total{kind="unreachable"} 4`, `wsgate_bus_errors_total{kind="lease_lost"} 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("no line %s in:\n%s", line, body)
		}
	}
}

func TestLimitsAreGaugesOfTheConfiguredValues(t *testing.T) {
	t.Parallel()
	m := New(Build{Version: "x"})
	m.SetLimits(Limits{Connections: 100, Forks: 50, ConnectionsPerAddress: 4, HandshakeRate: 2.5, MessageBytes: 1 << 20,
		LineBytes: 4096, Queue: 16, Lifetime: 8 * time.Hour, Idle: 90 * time.Second})
	_, body := get(t, m.Handler(func() error { return nil }), "/metrics")
	for _, line := range []string{
		"wsgate_limit_connections 100", "wsgate_limit_forks 50", "wsgate_limit_connections_per_address 4",
		"wsgate_limit_handshake_rate 2.5", "wsgate_limit_message_bytes 1.048576e+06", "wsgate_limit_line_bytes 4096",
		"wsgate_limit_queue_messages 16", "wsgate_limit_lifetime_seconds 28800", "wsgate_limit_idle_seconds 90",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("no line %s", line)
		}
	}
}

func TestEndpointsHaveSeriesBeforeTheirFirstConnection(t *testing.T) {
	t.Parallel()
	m := New(Build{Version: "x"})
	m.Endpoints([]string{"/idle.sh"}, false)
	_, body := get(t, m.Handler(func() error { return nil }), "/metrics")
	for _, line := range []string{
		`wsgate_connections{endpoint="/idle.sh"} 0`, `wsgate_children{endpoint="/idle.sh"} 0`,
		`wsgate_child_starts_total{endpoint="/idle.sh"} 0`, `wsgate_child_start_failures_total{endpoint="/idle.sh"} 0`,
		`wsgate_messages_total{direction="in",endpoint="/idle.sh"} 0`, `wsgate_bytes_total{direction="out",endpoint="/idle.sh"} 0`,
		`wsgate_session_duration_seconds_count{endpoint="/idle.sh"} 0`, `wsgate_first_message_seconds_count{endpoint="/idle.sh"} 0`,
		`wsgate_stderr_lines_total{endpoint="/idle.sh"} 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("no line %s", line)
		}
	}
	if strings.Contains(body, "wsgate_broadcast_subscribers{") {
		t.Error("broadcast series made outside broadcast mode")
	}
	m.Endpoints([]string{"/idle.sh"}, true)
	_, body = get(t, m.Handler(func() error { return nil }), "/metrics")
	if !strings.Contains(body, `wsgate_broadcast_subscribers{endpoint="/idle.sh"} 0`+"\n") {
		t.Error("broadcast series not made in broadcast mode")
	}
}
