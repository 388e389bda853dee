package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/wsgate/wsgate/gateway"
)

// metricsSocketName is the FileDescriptorName= of the socket that serves
// metrics rather than WebSocket clients.
const metricsSocketName = "metrics"

// statusInterval is the most often the STATUS= line is sent to systemd.
const statusInterval = time.Second

// sockets are the listening sockets systemd passed (socket activation):
// LISTEN_FDS from LISTEN_PID, which must be wsgate's own.
type sockets struct {
	main, metrics []net.Listener
}

// inheritedSockets takes the sockets systemd passed, if any. They are made
// close-on-exec first, so that no child inherits them, and the LISTEN_*
// variables are removed from the environment. Each must be a listening
// stream socket (TCP or Unix); the ones named "metrics" serve metrics.
func inheritedSockets() (sockets, error) {
	var s sockets
	files := activation.Files(true)
	defer func() {
		for _, f := range files {
			f.Close() // each listener holds a copy
		}
	}()
	for _, f := range files {
		l, err := net.FileListener(f)
		if err != nil {
			s.close()
			return sockets{}, fmt.Errorf("socket %q (fd %d) passed by systemd is no listening stream socket: %w", f.Name(), f.Fd(), err)
		}
		if f.Name() == metricsSocketName {
			s.metrics = append(s.metrics, l)
		} else {
			s.main = append(s.main, l)
		}
	}
	return s, nil
}

func (s sockets) close() {
	for _, l := range append(s.main, s.metrics...) {
		l.Close()
	}
}

// notifier tells systemd how wsgate is doing, through the datagram socket
// NOTIFY_SOCKET names (sd_notify): READY=1 once serving (with --bus, once
// the bus is up: until then it extends the start timeout, so that a Redis
// that starts later does not fail the unit), STATUS= with the numbers of
// connections and children and the bus's state as they change (at most
// once per statusInterval), WATCHDOG=1 every half WATCHDOG_USEC while the
// gateway answers, and STOPPING=1 when shutdown begins. Without
// NOTIFY_SOCKET it does nothing. Its goroutine, run, is the owner's to start
// and stop.
type notifier struct {
	gw       *gateway.Gateway
	bus      func() (up bool, reason string) // the bus's health; nil without --bus
	log      *slog.Logger
	watchdog time.Duration // half WATCHDOG_USEC; 0 when off
	quit     chan struct{}
	done     chan struct{}

	mu         sync.Mutex // serializes sends, and guards what follows
	lastStatus string
	started    bool // run was started
	readySent  bool // READY=1 was sent
	failed     bool // a send failed: logged once
}

// newNotifier returns a notifier for gw and its bus (nil for none), or nil
// without NOTIFY_SOCKET.
func newNotifier(gw *gateway.Gateway, bus func() (bool, string), logger *slog.Logger) *notifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	n := &notifier{gw: gw, bus: bus, log: logger, quit: make(chan struct{}), done: make(chan struct{})}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("systemd watchdog off", "err", err)
	}
	n.watchdog = interval / 2
	return n
}

// ready says wsgate serves, once the bus is up, and starts run.
func (n *notifier) ready() {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.started = true
	n.mu.Unlock()
	n.sendStatus()
	go n.run()
}

// run sends STATUS= when the counts change and WATCHDOG=1 while the
// gateway answers, until stop.
func (n *notifier) run() {
	defer close(n.done)
	status := time.NewTicker(statusInterval)
	defer status.Stop()
	var watchdog <-chan time.Time
	if n.watchdog > 0 {
		t := time.NewTicker(n.watchdog)
		defer t.Stop()
		watchdog = t.C
		n.send(daemon.SdNotifyWatchdog)
	}
	for {
		select {
		case <-n.quit:
			return
		case <-status.C:
			n.sendStatus()
		case <-watchdog:
			n.gw.Draining() // returns only if the gateway's lock is free: it is not stuck
			n.send(daemon.SdNotifyWatchdog)
		}
	}
}

// sendStatus sends STATUS= if it changed since it was last sent, READY=1
// the first time the bus is up, and while it has not been, a longer start
// timeout.
func (n *notifier) sendStatus() {
	up, reason := true, ""
	if n.bus != nil {
		up, reason = n.bus()
	}
	line := statusLine(n.gw.Stats(), up, reason)
	n.mu.Lock()
	changed := line != n.lastStatus
	n.lastStatus = line
	becomesReady := up && !n.readySent
	n.readySent = n.readySent || up
	waiting := !n.readySent
	n.mu.Unlock()
	switch {
	case becomesReady:
		n.send(daemon.SdNotifyReady + "\nSTATUS=" + line)
	case waiting:
		n.send(fmt.Sprintf("STATUS=%s\nEXTEND_TIMEOUT_USEC=%d", line, (3 * statusInterval).Microseconds()))
	case changed:
		n.send("STATUS=" + line)
	}
}

// statusLine is what systemctl status shows of wsgate: its counts, and
// with --bus while the bus is down, why.
func statusLine(s gateway.Stats, busUp bool, reason string) string {
	line := fmt.Sprintf("connections: %d, children: %d", s.Connections, s.Children)
	if !busUp {
		line += "; waiting for the bus: " + reason
	}
	return line
}

// reloading says a reload (SIGHUP) has begun; reloaded that it is done.
func (n *notifier) reloading() {
	if n != nil {
		n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
	}
}

func (n *notifier) reloaded() {
	if n == nil {
		return
	}
	n.mu.Lock()
	ready := n.readySent
	n.mu.Unlock()
	if ready { // else READY=1 still waits for the bus
		n.send(daemon.SdNotifyReady)
	}
}

// stopping says shutdown has begun.
func (n *notifier) stopping() {
	if n != nil {
		n.send(daemon.SdNotifyStopping + "\nSTATUS=shutting down")
	}
}

// stop ends run, if it was started, and waits for it.
func (n *notifier) stop() {
	if n == nil {
		return
	}
	close(n.quit)
	n.mu.Lock()
	started := n.started
	n.mu.Unlock()
	if started {
		<-n.done
	}
}

// send sends one notification; the first failure is logged.
func (n *notifier) send(state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := daemon.SdNotify(false, state); err != nil && !n.failed {
		n.failed = true
		n.log.Warn("cannot notify systemd", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
	}
}
