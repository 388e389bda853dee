package gateway

import (
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/observe"
)

// counting passes every event on to the configured observe.Observer and keeps the
// counts Stats reports.
type counting struct {
	observe.Observer
	connections, children atomic.Int64
}

// ConnectionOpened counts the connection and passes the event on.
func (c *counting) ConnectionOpened(endpoint string) {
	c.connections.Add(1)
	c.Observer.ConnectionOpened(endpoint)
}

// ConnectionClosed counts the connection out and passes the event on.
func (c *counting) ConnectionClosed(endpoint string, code int, d time.Duration) {
	c.connections.Add(-1)
	c.Observer.ConnectionClosed(endpoint, code, d)
}

// ChildStarted counts the child and passes the event on.
func (c *counting) ChildStarted(endpoint string) {
	c.children.Add(1)
	c.Observer.ChildStarted(endpoint)
}

// ChildEnded counts the child out and passes the event on.
func (c *counting) ChildEnded(endpoint string) {
	c.children.Add(-1)
	c.Observer.ChildEnded(endpoint)
}

// Stats is what a gateway is doing at one moment.
type Stats struct {
	Connections int // open WebSocket connections
	Children    int // running child processes
}

// Stats returns the number of open connections and running children.
func (g *Gateway) Stats() Stats {
	return Stats{Connections: int(g.observe.connections.Load()), Children: int(g.observe.children.Load())}
}
