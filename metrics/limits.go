package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits are the configured bounds, exported as gauges so that a dashboard
// can chart how much of each is used. 0 means unlimited, as on the command
// line.
type Limits struct {
	Connections           int           // --maxconns
	Forks                 int           // --maxforks
	ConnectionsPerAddress int           // --maxconnsperip
	HandshakeRate         float64       // --ratelimit, per second and client address
	MessageBytes          int64         // --maxframesize
	LineBytes             int           // --maxlinesize
	Queue                 int           // --queue (broadcast mode)
	Lifetime              time.Duration // --maxlifetime
	Idle                  time.Duration // --idletimeout
}

// SetLimits exports l, one gauge per limit, named wsgate_limit_*. Call it
// once, before serving.
func (m *Metrics) SetLimits(l Limits) {
	for _, g := range []struct {
		name, help string
		value      float64
	}{
		{"wsgate_limit_connections", "--maxconns: most concurrent WebSocket connections; 0 for unlimited.", float64(l.Connections)},
		{"wsgate_limit_forks", "--maxforks: most concurrent child processes; 0 for unlimited.", float64(l.Forks)},
		{"wsgate_limit_connections_per_address", "--maxconnsperip: most concurrent connections from one client address; 0 for unlimited.", float64(l.ConnectionsPerAddress)},
		{"wsgate_limit_handshake_rate", "--ratelimit: handshakes per second one client address may make; 0 for unlimited.", l.HandshakeRate},
		{"wsgate_limit_message_bytes", "--maxframesize: largest message accepted from a client, in bytes.", float64(l.MessageBytes)},
		{"wsgate_limit_line_bytes", "--maxlinesize: longest output line sent, in bytes.", float64(l.LineBytes)},
		{"wsgate_limit_queue_messages", "--queue: most messages queued for one client in broadcast mode.", float64(l.Queue)},
		{"wsgate_limit_lifetime_seconds", "--maxlifetime: age at which a session is closed; 0 for no bound.", l.Lifetime.Seconds()},
		{"wsgate_limit_idle_seconds", "--idletimeout: quiet time after which a session is closed; 0 for no bound.", l.Idle.Seconds()},
	} {
		gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: g.name, Help: g.help})
		gauge.Set(g.value)
		m.registry.MustRegister(gauge)
	}
}
