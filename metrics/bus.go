package metrics

import "github.com/prometheus/client_golang/prometheus"

// Bus is what the metrics read of a broadcast bus (--bus) at each scrape.
type Bus interface {
	// BusUp reports whether the bus answers.
	BusUp() bool
	// LeadingStreams returns how many streams this instance leads.
	LeadingStreams() int
	// Takeovers returns how many times this instance took the lead of a
	// stream another instance had led.
	Takeovers() uint64
	// ErrorCounts returns the errors met so far, by kind; every kind is
	// there from the start, at 0.
	ErrorCounts() map[string]uint64
}

// busCollector reads a Bus at each scrape.
type busCollector struct {
	bus                            Bus
	up, leading, takeovers, errors *prometheus.Desc
}

// WatchBus adds the bus's series: wsgate_bus_up, wsgate_bus_leading_streams,
// wsgate_bus_takeovers_total and wsgate_bus_errors_total{kind}. Call it
// once, before serving.
func (m *Metrics) WatchBus(b Bus) {
	m.registry.MustRegister(&busCollector{
		bus:       b,
		up:        prometheus.NewDesc("wsgate_bus_up", "1 while the bus (--bus) answers, else 0.", nil, nil),
		leading:   prometheus.NewDesc("wsgate_bus_leading_streams", "Broadcast streams whose process this instance runs, as the bus's leader.", nil, nil),
		takeovers: prometheus.NewDesc("wsgate_bus_takeovers_total", "Leads taken of streams another instance had led (it died, froze or left).", nil, nil),
		errors:    prometheus.NewDesc("wsgate_bus_errors_total", "Errors of the bus, by kind (unreachable, auth, cut_off, lease_lost, gap, replication...).", []string{"kind"}, nil),
	})
}

func (c *busCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.leading
	ch <- c.takeovers
	ch <- c.errors
}

func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.bus.BusUp() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.leading, prometheus.GaugeValue, float64(c.bus.LeadingStreams()))
	ch <- prometheus.MustNewConstMetric(c.takeovers, prometheus.CounterValue, float64(c.bus.Takeovers()))
	for kind, n := range c.bus.ErrorCounts() {
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(n), kind)
	}
}
