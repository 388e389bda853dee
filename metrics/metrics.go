// Package metrics exposes what a gateway does as Prometheus metrics: it
// implements observe.Observer with client_golang and serves /metrics and
// /healthz on a listener of its own, never on the gateway's.
package metrics

import (
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/process"
)

// sessionBuckets are the upper bounds of the session duration histogram, in
// seconds: from a refused connection to a dashboard left open all day.
var sessionBuckets = []float64{0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// firstMessageBuckets are the upper bounds of the histogram of the time
// from a connection's opening to its first message out, in seconds: from a
// program that answers at once to one that waits minutes for an event.
var firstMessageBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300}

// Build is what wsgate_build_info tells of the binary.
type Build struct {
	Version string // wsgate's version
	Commit  string // the commit it was built from, or "unknown"
}

// Metrics is a observe.Observer that counts in Prometheus metrics, all
// named wsgate_*, next to the Go runtime's and the process's. It is safe for
// concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	connections      *prometheus.GaugeVec
	connectionsTotal *prometheus.CounterVec
	children         *prometheus.GaugeVec
	childStarts      *prometheus.CounterVec
	childFailures    *prometheus.CounterVec
	messages         *prometheus.CounterVec
	bytes            *prometheus.CounterVec
	refused          *prometheus.CounterVec
	sessionDuration  *prometheus.HistogramVec
	subscribers      *prometheus.GaugeVec
	slowClients      *prometheus.CounterVec
	exits            *prometheus.CounterVec
	stderrLines      *prometheus.CounterVec
	firstMessage     *prometheus.HistogramVec

	// traffic holds each endpoint's message counters, looked up once: the
	// vectors hash their labels at every lookup, and Messages runs for
	// every message. Bounded by the endpoints, as the labels are.
	traffic sync.Map // endpoint -> *traffic
}

// traffic is one endpoint's series of wsgate_messages_total and
// wsgate_bytes_total.
type traffic struct {
	msgsIn, bytesIn, msgsOut, bytesOut prometheus.Counter
}

var _ observe.Observer = (*Metrics)(nil)

// gauge and counter make a metric vector with the given labels.
func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// New returns the metrics of the wsgate binary build, registered with a
// registry of their own.
func New(build Build) *Metrics {
	m := &Metrics{
		registry:         prometheus.NewRegistry(),
		connections:      gauge("wsgate_connections", "Open WebSocket connections.", "endpoint"),
		connectionsTotal: counter("wsgate_connections_total", "Ended WebSocket connections, by close code (1006: no close frame; other: a code a client chose).", "endpoint", "code"),
		children:         gauge("wsgate_children", "Running child processes.", "endpoint"),
		childStarts:      counter("wsgate_child_starts_total", "Child processes started.", "endpoint"),
		childFailures:    counter("wsgate_child_start_failures_total", "Child processes that could not be started.", "endpoint"),
		messages:         counter("wsgate_messages_total", "Messages, in: from clients to children, out: from children to clients.", "endpoint", "direction"),
		bytes:            counter("wsgate_bytes_total", "Message payload bytes, in: from clients to children, out: from children to clients.", "endpoint", "direction"),
		refused:          counter("wsgate_handshakes_refused_total", "WebSocket handshakes refused (limit: closed at once with 1013), by reason.", "reason"),
		sessionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wsgate_session_duration_seconds", Help: "How long WebSocket connections lasted.", Buckets: sessionBuckets,
		}, []string{"endpoint"}),
		subscribers: gauge("wsgate_broadcast_subscribers", "Clients sharing a process in broadcast mode.", "endpoint"),
		slowClients: counter("wsgate_slow_clients_total", "Clients closed with 1013 client too slow.", "endpoint"),
		exits: counter("wsgate_program_exits_total", "Child processes ended, by status: the exit code 0 to 8, other for a higher one, "+
			"the name of a common signal that killed it (SIGTERM, SIGKILL...), signal for any other.", "endpoint", "status"),
		stderrLines: counter("wsgate_stderr_lines_total", "Lines child processes printed on stderr.", "endpoint"),
		firstMessage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wsgate_first_message_seconds", Help: "Time from a WebSocket connection's opening to its first message to the client.", Buckets: firstMessageBuckets,
		}, []string{"endpoint"}),
	}
	buildInfo := gauge("wsgate_build_info", "Always 1: the version and commit of wsgate and the Go it was built with.", "version", "commit", "goversion")
	buildInfo.WithLabelValues(build.Version, build.Commit, runtime.Version()).Set(1)
	for _, reason := range observe.RefusalReasons {
		m.refused.WithLabelValues(string(reason)) // every reason shows, at 0 until it happens
	}
	m.registry.MustRegister(
		m.connections, m.connectionsTotal, m.children, m.childStarts, m.childFailures,
		m.messages, m.bytes, m.refused, m.sessionDuration, m.subscribers, m.slowClients, buildInfo,
		m.exits, m.stderrLines, m.firstMessage,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// HandshakeRefused counts a refused handshake.
func (m *Metrics) HandshakeRefused(reason observe.RefusalReason) {
	m.refused.WithLabelValues(string(reason)).Inc()
}

// ConnectionOpened counts an open connection.
func (m *Metrics) ConnectionOpened(endpoint string) {
	m.connections.WithLabelValues(endpoint).Inc()
}

// ConnectionClosed counts an ended connection and its duration.
func (m *Metrics) ConnectionClosed(endpoint string, code int, duration time.Duration) {
	m.connections.WithLabelValues(endpoint).Dec()
	m.connectionsTotal.WithLabelValues(endpoint, observe.CloseCodeLabel(code)).Inc()
	m.sessionDuration.WithLabelValues(endpoint).Observe(duration.Seconds())
}

// ChildStarted counts a started child.
func (m *Metrics) ChildStarted(endpoint string) {
	m.childStarts.WithLabelValues(endpoint).Inc()
	m.children.WithLabelValues(endpoint).Inc()
}

// ChildStartFailed counts a child that could not start.
func (m *Metrics) ChildStartFailed(endpoint string) {
	m.childFailures.WithLabelValues(endpoint).Inc()
}

// ChildEnded counts a child out, and how it ended.
func (m *Metrics) ChildEnded(endpoint string, status process.Status) {
	m.children.WithLabelValues(endpoint).Dec()
	m.exits.WithLabelValues(endpoint, observe.ExitLabel(status)).Inc()
}

// FirstMessage notes how long a connection waited for its first message.
func (m *Metrics) FirstMessage(endpoint string, after time.Duration) {
	m.firstMessage.WithLabelValues(endpoint).Observe(after.Seconds())
}

// StderrLine counts a line of a child's stderr.
func (m *Metrics) StderrLine(endpoint string) {
	m.stderrLines.WithLabelValues(endpoint).Inc()
}

// Messages counts messages and their payload bytes.
func (m *Metrics) Messages(endpoint string, dir observe.Direction, messages, bytes int64) {
	t := m.trafficOf(endpoint)
	msgs, size := t.msgsIn, t.bytesIn
	if dir == observe.Out {
		msgs, size = t.msgsOut, t.bytesOut
	}
	if messages > 0 {
		msgs.Add(float64(messages))
	}
	if bytes > 0 {
		size.Add(float64(bytes))
	}
}

// trafficOf returns endpoint's message counters, made on first use.
func (m *Metrics) trafficOf(endpoint string) *traffic {
	if t, ok := m.traffic.Load(endpoint); ok {
		return t.(*traffic)
	}
	t := &traffic{
		msgsIn:   m.messages.WithLabelValues(endpoint, string(observe.In)),
		bytesIn:  m.bytes.WithLabelValues(endpoint, string(observe.In)),
		msgsOut:  m.messages.WithLabelValues(endpoint, string(observe.Out)),
		bytesOut: m.bytes.WithLabelValues(endpoint, string(observe.Out)),
	}
	actual, _ := m.traffic.LoadOrStore(endpoint, t)
	return actual.(*traffic)
}

// SlowClient counts a client closed for being too slow.
func (m *Metrics) SlowClient(endpoint string) {
	m.slowClients.WithLabelValues(endpoint).Inc()
}

// BroadcastSubscribers changes the number of clients sharing a process.
func (m *Metrics) BroadcastSubscribers(endpoint string, delta int) {
	m.subscribers.WithLabelValues(endpoint).Add(float64(delta))
}

// Endpoints makes the series of each endpoint named, at 0, so that an
// endpoint shows from the start rather than at its first connection: every
// series labelled by the endpoint alone (and direction), the broadcast
// ones too when broadcast is set. Series that also carry a close code or an
// exit status appear at their first event.
func (m *Metrics) Endpoints(names []string, broadcast bool) {
	for _, e := range names {
		m.connections.WithLabelValues(e)
		m.children.WithLabelValues(e)
		m.childStarts.WithLabelValues(e)
		m.childFailures.WithLabelValues(e)
		m.trafficOf(e)
		m.sessionDuration.WithLabelValues(e)
		m.firstMessage.WithLabelValues(e)
		m.stderrLines.WithLabelValues(e)
		if broadcast {
			m.subscribers.WithLabelValues(e)
			m.slowClients.WithLabelValues(e)
		}
	}
}

// Handler serves the metrics at /metrics, and at /healthz 200 "ok" while
// health returns nil, else 503 with the error's text: why it is not
// serving.
func (m *Metrics) Handler(health func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error()))
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}
