// Package observe is what a gateway tells of what it does, for metrics: the
// Observer interface, its events' labels and their bounds. It knows nothing
// of how they are counted or exported.
package observe

import (
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/process"
)

// Observer is told what the gateway does, for metrics. Its methods are
// called from many goroutines at once, on the paths that serve clients:
// they must be quick and must not block.
//
// endpoint is the URL path of the script a connection runs ("/" for a single
// command): bounded by the files the gateway serves, never taken from what a
// client sends. Embed NopObserver to implement only some methods.
type Observer interface {
	// HandshakeRefused: a WebSocket handshake was refused, or closed at
	// once with 1013 for reason RefusedLimit, RefusedPerAddress or
	// RefusedBus.
	HandshakeRefused(reason RefusalReason)
	// ConnectionOpened: a WebSocket connection to endpoint is open.
	ConnectionOpened(endpoint string)
	// ConnectionClosed: it has ended, with close code (1006 when no close
	// frame was exchanged), after duration. The code may be one the client
	// chose: CloseCodeLabel bounds it for a label.
	ConnectionClosed(endpoint string, code int, duration time.Duration)
	// ChildStarted: a child process of endpoint started.
	ChildStarted(endpoint string)
	// ChildStartFailed: one could not be started.
	ChildStartFailed(endpoint string)
	// ChildEnded: a started child and its process group are gone; status
	// is how it ended (ExitLabel bounds it for a label).
	ChildEnded(endpoint string, status process.Status)
	// Messages: messages, with bytes of payload, went from clients to
	// endpoint's child (In) or from it to clients (Out).
	Messages(endpoint string, dir Direction, messages, bytes int64)
	// FirstMessage: the first message to a client of endpoint was written,
	// after since its connection opened.
	FirstMessage(endpoint string, after time.Duration)
	// StderrLine: endpoint's child printed a line on stderr.
	StderrLine(endpoint string)
	// SlowClient: a client of endpoint was closed with 1013 "client too
	// slow" (broadcast mode).
	SlowClient(endpoint string)
	// BroadcastSubscribers: the clients sharing endpoint's process changed
	// by delta (broadcast mode).
	BroadcastSubscribers(endpoint string, delta int)
}

// closeCodesTold are the close codes a connection's end is reported with
// as they are: those wsgate sends, 1005 (the client's close frame had no
// code) and 1006 (no close frame at all).
var closeCodesTold = map[int]string{
	1000: "1000", 1001: "1001", 1002: "1002", 1005: "1005", 1006: "1006", 1007: "1007",
	1008: "1008", 1009: "1009", 1011: "1011", 1012: "1012", 1013: "1013",
}

// CloseCodeLabel is how a close code is told in metrics: as it is when it
// is one wsgate sends (or 1005, 1006), "other" when a client chose it, so
// that no client can make a series of its own.
func CloseCodeLabel(code int) string {
	if label, ok := closeCodesTold[code]; ok {
		return label
	}
	return "other"
}

// MaxExitLabel is the highest exit code told as it is by ExitLabel; higher
// ones are "other". Scripts rarely use more than a few codes, and each
// told code is a series per endpoint.
const MaxExitLabel = 8

// ExitLabel is how a child's end is told in metrics, from a bounded set:
// "0" to "8" for those exit codes, "other" for a higher one, the signal's
// name ("SIGTERM", "SIGKILL"...) for a common signal and "signal" for any
// other.
func ExitLabel(status process.Status) string {
	if status.Signal != 0 {
		if name, ok := signalNames[status.Signal]; ok {
			return name
		}
		return "signal"
	}
	if status.Code < 0 || status.Code > MaxExitLabel {
		return "other"
	}
	return strconv.Itoa(status.Code)
}

// signalNames are the signals a child's end is told by name: those that
// wsgate's stop sequence sends and those a program commonly dies of.
var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGILL: "SIGILL",
	syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
	syscall.SIGSEGV: "SIGSEGV", syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
}

// Direction is which way messages went.
type Direction string

// Directions of Observer.Messages.
const (
	In  Direction = "in"  // from a client to the child
	Out Direction = "out" // from the child to clients
)

// RefusalReason says why a handshake was refused.
type RefusalReason string

// Reasons of Observer.HandshakeRefused.
const (
	RefusedOrigin     RefusalReason = "origin"      // the origin is not allowed: 403
	RefusedNotFound   RefusalReason = "not_found"   // the path names no endpoint: 404
	RefusedLimit      RefusalReason = "limit"       // over --maxforks: close 1013
	RefusedShutdown   RefusalReason = "shutdown"    // the gateway is shutting down: 503
	RefusedBadRequest RefusalReason = "bad_request" // not a valid handshake: 400 and the like
	RefusedBus        RefusalReason = "bus"         // the bus (--bus) cannot be reached: close 1013
	RefusedAuth       RefusalReason = "auth"        // no method let it in: 401, 403, or 503 from the command
	RefusedRate       RefusalReason = "rate"        // over --ratelimit: 429
	RefusedPerAddress RefusalReason = "per_address" // over --maxconnsperip: close 1013
)

// RefusalReasons lists every RefusalReason.
var RefusalReasons = []RefusalReason{RefusedOrigin, RefusedNotFound, RefusedLimit, RefusedShutdown, RefusedBadRequest, RefusedBus,
	RefusedAuth, RefusedRate, RefusedPerAddress}

// NopObserver ignores everything. Embed it in an Observer that implements
// only some methods.
type NopObserver struct{}

// HandshakeRefused does nothing.
func (NopObserver) HandshakeRefused(RefusalReason) {}

// ConnectionOpened does nothing.
func (NopObserver) ConnectionOpened(string) {}

// ConnectionClosed does nothing.
func (NopObserver) ConnectionClosed(string, int, time.Duration) {}

// ChildStarted does nothing.
func (NopObserver) ChildStarted(string) {}

// ChildStartFailed does nothing.
func (NopObserver) ChildStartFailed(string) {}

// ChildEnded does nothing.
func (NopObserver) ChildEnded(string, process.Status) {}

// FirstMessage does nothing.
func (NopObserver) FirstMessage(string, time.Duration) {}

// StderrLine does nothing.
func (NopObserver) StderrLine(string) {}

// Messages does nothing.
func (NopObserver) Messages(string, Direction, int64, int64) {}

// SlowClient does nothing.
func (NopObserver) SlowClient(string) {}

// BroadcastSubscribers does nothing.
func (NopObserver) BroadcastSubscribers(string, int) {}

// Counting passes every event on to an Observer and counts the open
// connections and running children. It is safe for concurrent use.
type Counting struct {
	Observer
	connections, children atomic.Int64
}

// ConnectionOpened counts the connection and passes the event on.
func (c *Counting) ConnectionOpened(endpoint string) {
	c.connections.Add(1)
	c.Observer.ConnectionOpened(endpoint)
}

// ConnectionClosed counts the connection out and passes the event on.
func (c *Counting) ConnectionClosed(endpoint string, code int, d time.Duration) {
	c.connections.Add(-1)
	c.Observer.ConnectionClosed(endpoint, code, d)
}

// ChildStarted counts the child and passes the event on.
func (c *Counting) ChildStarted(endpoint string) {
	c.children.Add(1)
	c.Observer.ChildStarted(endpoint)
}

// ChildEnded counts the child out and passes the event on.
func (c *Counting) ChildEnded(endpoint string, status process.Status) {
	c.children.Add(-1)
	c.Observer.ChildEnded(endpoint, status)
}

// Connections returns the open connections.
func (c *Counting) Connections() int { return int(c.connections.Load()) }

// Children returns the running children.
func (c *Counting) Children() int { return int(c.children.Load()) }
