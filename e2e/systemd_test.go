package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialUnix opens a WebSocket connection over the Unix socket at path.
func dialUnix(t *testing.T, path string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}
	conn, resp, err := d.Dial("ws://wsgate/", nil)
	if err != nil {
		t.Fatalf("dial unix %s: %v", path, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialWhenListening dials url, retrying while nothing listens yet (at most
// 10 s).
func dialWhenListening(t *testing.T, g *gatewayProc, url string) *websocket.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for {
		conn, resp, err := d.Dial(url, nil)
		if err == nil {
			resp.Body.Close()
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v; stderr:\n%s", url, err, g.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// systemd-socket-activate binds real sockets, waits for a first connection
// and execs wsgate with them as LISTEN_FDS, as systemd does. --port names
// the port the socket holds: wsgate must serve the socket rather than bind
// it again, which is what ended in "address already in use".
func TestSystemd_SocketActivationServesThePassedSockets(t *testing.T) {
	t.Parallel()
	activate := requireTool(t, "systemd-socket-activate")
	web, metrics := freeAddr(t), freeAddr(t)
	unixSocket := filepath.Join(t.TempDir(), "ws.sock")
	_, webPort, _ := net.SplitHostPort(web)
	// The child lists the sockets it holds: none, since every passed socket
	// is close-on-exec.
	script := writeScript(t, `ls -l /proc/$$/fd | grep -c socket: ; exec cat`)
	g := launchBinary(t, activate, nil,
		"-l", web, "-l", unixSocket, "-l", metrics, "--fdname=web:web:metrics",
		"-E", "GORACE=atexit_sleep_ms=50",
		wsgateBin, "--port="+webPort, "--address=127.0.0.1", "--metrics=127.0.0.1:1", script)

	conn := dialWhenListening(t, g, "ws://"+web+"/")
	if got := receive(t, conn); got != "0" {
		t.Errorf("the child holds %s sockets, want 0", got)
	}
	send(t, conn, "over tcp")
	if got := receive(t, conn); got != "over tcp" {
		t.Errorf("echo %q", got)
	}
	if children := childrenOf(g.pid()); len(children) != 1 {
		t.Errorf("the activated process has children %v, want 1: it is not wsgate itself", children)
	}
	g.waitLog(5*time.Second, "serving the sockets systemd passed; --port, --address and --unixsocket are not used", nil)

	overUnix := dialUnix(t, unixSocket)
	receive(t, overUnix)
	send(t, overUnix, "over unix")
	if got := receive(t, overUnix); got != "over unix" {
		t.Errorf("echo over the Unix socket %q", got)
	}

	s := waitMetric(t, metrics, 2, "wsgate_connections", "endpoint=/")
	s.expect(t, 2, "wsgate_children", "endpoint=/")
	if code, body := httpGet(t, "http://"+metrics+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz on the metrics socket: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+web+"/metrics"); code == http.StatusOK {
		t.Error("the web socket serves /metrics")
	}

	g.stop(syscall.SIGTERM)
	expectClose(t, conn, websocket.CloseGoingAway, "server shutting down")
	expectClose(t, overUnix, websocket.CloseGoingAway, "server shutting down")
	if code, _ := g.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

func TestSystemd_ASocketThatDoesNotListenIsRefused(t *testing.T) {
	t.Parallel()
	activate := requireTool(t, "systemd-socket-activate")
	addr := freeAddr(t)
	g := launchBinary(t, activate, nil, "--datagram", "-l", addr, "-E", "GORACE=atexit_sleep_ms=50", wsgateBin, "cat")
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first datagram that arrives once the socket is bound makes it
	// exec wsgate.
	for i := 0; i < 100; i++ {
		_, _ = c.Write([]byte("x"))
		select {
		case <-g.exited:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	if code, _ := g.wait(10 * time.Second); code == 0 {
		t.Fatalf("wsgate served a datagram socket; stderr:\n%s", g.logs())
	}
	if !strings.Contains(g.logs(), "no listening stream socket") {
		t.Errorf("stderr does not say why:\n%s", g.logs())
	}
}

// notifications receives what wsgate sends to NOTIFY_SOCKET.
type notifications struct {
	conn *net.UnixConn
	path string
}

func listenNotify(t *testing.T) *notifications {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifications{conn: conn, path: path}
}

// next returns the next datagram, failing the test after timeout.
func (n *notifications) next(t *testing.T, timeout time.Duration) (string, time.Time) {
	t.Helper()
	_ = n.conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %v: %v", timeout, err)
	}
	return string(buf[:k]), time.Now()
}

// waitFor reads datagrams until one holds want (at most timeout), and
// returns it and the ones before it.
func (n *notifications) waitFor(t *testing.T, want string, timeout time.Duration) (string, []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var before []string
	for {
		msg, _ := n.next(t, time.Until(deadline))
		if strings.Contains(msg, want) {
			return msg, before
		}
		before = append(before, msg)
	}
}

func TestSystemd_NotifyReadyStatusWatchdogReloadingAndStopping(t *testing.T) {
	t.Parallel()
	n := listenNotify(t)
	g := startGatewayEnv(t, []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=400000"}, "cat")

	ready, _ := n.waitFor(t, "READY=1", 10*time.Second)
	if !strings.Contains(ready, "STATUS=connections: 0, children: 0") {
		t.Errorf("READY=1 came as %q, want the status with it", ready)
	}
	conn := dial(t, g.url("/")) // serving by the time READY=1 is sent
	send(t, conn, "x")
	receive(t, conn)
	n.waitFor(t, "STATUS=connections: 1, children: 1", 5*time.Second)

	// WATCHDOG=1 every 200 ms (WATCHDOG_USEC/2); STATUS= at most once a
	// second, and only when it changes.
	start := time.Now()
	watchdogs, statuses := 0, []time.Time{}
	for time.Since(start) < 2*time.Second {
		msg, at := n.next(t, 2*time.Second)
		switch {
		case msg == "WATCHDOG=1":
			watchdogs++
		case strings.HasPrefix(msg, "STATUS="):
			statuses = append(statuses, at)
		}
	}
	if watchdogs < 4 || watchdogs > 15 {
		t.Errorf("%d WATCHDOG=1 in 2 s, want about 10 (every 200 ms)", watchdogs)
	}
	if len(statuses) > 0 {
		t.Errorf("%d STATUS= lines while nothing changed", len(statuses))
	}
	closeFromClient(t, conn, websocket.CloseNormalClosure, "")
	n.waitFor(t, "STATUS=connections: 0, children: 0", 5*time.Second)

	g.stop(syscall.SIGHUP)
	n.waitFor(t, "RELOADING=1", 5*time.Second)
	n.waitFor(t, "READY=1", 5*time.Second)

	g.stop(syscall.SIGTERM)
	n.waitFor(t, "STOPPING=1", 5*time.Second)
	if code, _ := g.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

func TestSystemd_UnitsPassSystemdAnalyzeVerify(t *testing.T) {
	t.Parallel()
	analyze := requireTool(t, "systemd-analyze")
	dir := t.TempDir()
	units := []string{"wsgate.service", "wsgate.socket", "wsgate-metrics.socket"}
	for _, unit := range units {
		text := readExample(t, "systemd/"+unit)
		if unit == "wsgate.service" {
			// verify checks that ExecStart's program exists
			text = substitute(t, text, "ExecStart=/usr/local/bin/wsgate ", "ExecStart="+wsgateBin+" ")
		}
		writeFile(t, filepath.Join(dir, unit), text)
	}
	args := []string{"verify", "--man=no"}
	for _, unit := range units {
		args = append(args, filepath.Join(dir, unit))
	}
	out, err := exec.Command(analyze, args...).CombinedOutput()
	// verify exits 0 even for a setting it cannot parse and ignores: any
	// line about our units is a failure.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		for _, unit := range units {
			if strings.Contains(line, unit) {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// runToListening runs wsgate with its stderr in a file and extra
// environment, waits (at most 10 s) for the listening line, stops it with
// SIGTERM and returns what it logged.
func runToListening(t *testing.T, stderr *os.File, env []string) string {
	t.Helper()
	cmd := exec.Command(wsgateBin, "--port=0", "--address=127.0.0.1", "--loglevel=info", "cat")
	cmd.Env, cmd.Stderr = append(cleanEnv(), env...), stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("wsgate did not exit within 10 s of SIGTERM")
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		logged, _ := os.ReadFile(stderr.Name())
		if strings.Contains(string(logged), "msg=listening") {
			return string(logged)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within 10 s:\n%s", logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// journald stamps each line itself: text logs to the stream JOURNAL_STREAM
// names (its device and inode) carry no time of their own.
func TestSystemd_TextLogsToTheJournalCarryNoTime(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		matching bool
		wantTime bool
	}{
		{"stderr-is-the-journal", true, false},
		{"another-stream", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			st := info.Sys().(*syscall.Stat_t)
			stream := strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino, 10)
			if !c.matching {
				stream = strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino+1, 10)
			}
			logged := runToListening(t, f, []string{"JOURNAL_STREAM=" + stream})
			for _, line := range strings.Split(strings.TrimSpace(logged), "\n") {
				if hasTime := strings.HasPrefix(line, "time="); hasTime != c.wantTime {
					t.Errorf("JOURNAL_STREAM=%s: line %q, want time=%v", stream, line, c.wantTime)
				}
			}
		})
	}
}

// The socket unit, the nginx and HAProxy examples and the README agree:
// systemd listens on loopback where both proxies forward, and the
// README's quick start listens on loopback too.
func TestExamples_TheSocketUnitListensWhereTheProxiesForward(t *testing.T) {
	t.Parallel()
	find := func(path string, pattern string) []string {
		t.Helper()
		var found []string
		for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(readExample(t, path), -1) {
			found = append(found, m[1])
		}
		if len(found) == 0 {
			t.Fatalf("examples/%s has no line matching %s", path, pattern)
		}
		return found
	}
	socket := find("systemd/wsgate.socket", `(?m)^ListenStream=(\S+)$`)
	if len(socket) != 1 || !strings.HasPrefix(socket[0], "127.0.0.1:") {
		t.Fatalf("wsgate.socket listens on %q, want one loopback address", socket)
	}
	nginx := find("nginx/wsgate.conf", `(?m)^\s*server (\S+);`)
	haproxy := find("haproxy/wsgate.cfg", `(?m)^\s*server \S+ (\S+)`)
	for _, forward := range append(nginx, haproxy...) {
		if forward != socket[0] {
			t.Errorf("a proxy forwards to %s, wsgate.socket listens on %s", forward, socket[0])
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	first := regexp.MustCompile("(?s)```sh\n([^\n]*)\n").FindSubmatch(readme)
	if first == nil || !strings.Contains(string(first[1]), "--address=127.0.0.1") || !strings.Contains(string(first[1]), "http://127.0.0.1:") {
		t.Errorf("the README's first command does not listen on loopback and name what to open: %q", first)
	}
}
