package gateway

// Stats is what a gateway is doing at one moment.
type Stats struct {
	Connections int // open WebSocket connections
	Children    int // running child processes
}

// Stats returns the number of open connections and running children.
func (g *Gateway) Stats() Stats {
	return Stats{Connections: g.observe.Connections(), Children: g.observe.Children()}
}
