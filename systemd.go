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
// NOTIFY_SOCKET names (sd_notify): READY=1 once serving, STATUS= with the
// numbers of connections and children as they change (at most once per
// statusInterval), WATCHDOG=1 every half WATCHDOG_USEC while the gateway
// answers, and STOPPING=1 when shutdown begins. Without NOTIFY_SOCKET it
// does nothing. Its goroutine, run, is the owner's to start and stop.
type notifier struct {
	gw       *gateway.Gateway
	log      *slog.Logger
	watchdog time.Duration // half WATCHDOG_USEC; 0 when off
	quit     chan struct{}
	done     chan struct{}

	mu         sync.Mutex // serializes sends, and guards what follows
	lastStatus string
	started    bool // run was started
	failed     bool // a send failed: logged once
}

// newNotifier returns a notifier for gw, or nil without NOTIFY_SOCKET.
func newNotifier(gw *gateway.Gateway, logger *slog.Logger) *notifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	n := &notifier{gw: gw, log: logger, quit: make(chan struct{}), done: make(chan struct{})}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("systemd watchdog off", "err", err)
	}
	n.watchdog = interval / 2
	return n
}

// ready says wsgate serves, and starts run.
func (n *notifier) ready() {
	if n == nil {
		return
	}
	status := statusLine(n.gw.Stats())
	n.mu.Lock()
	n.lastStatus, n.started = status, true
	n.mu.Unlock()
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
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

// sendStatus sends STATUS= if the counts changed since it was last sent.
func (n *notifier) sendStatus() {
	line := statusLine(n.gw.Stats())
	n.mu.Lock()
	changed := line != n.lastStatus
	n.lastStatus = line
	n.mu.Unlock()
	if changed {
		n.send("STATUS=" + line)
	}
}

// statusLine is what systemctl status shows of wsgate.
func statusLine(s gateway.Stats) string {
	return fmt.Sprintf("connections: %d, children: %d", s.Connections, s.Children)
}

// reloading says a reload (SIGHUP) has begun; reloaded that it is done.
func (n *notifier) reloading() {
	if n != nil {
		n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
	}
}

func (n *notifier) reloaded() {
	if n != nil {
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
