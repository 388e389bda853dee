package e2e

// wsgate behind the real nginx and HAProxy, configured by the files in
// examples/ with only addresses, certificates and timeouts substituted:
// what the README tells people to copy is what is tested.

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

const (
	// proxiedHost is the name the browser uses, whose TLS ends at the proxy.
	proxiedHost = "dash.example.com"
	// proxiedOrigin is the Origin of its pages, on port 443.
	proxiedOrigin = "https://" + proxiedHost
	// clientIP is the test client's own loopback address, so that the
	// client's address and the proxy's (127.0.0.1) differ.
	clientIP = "127.0.0.2"
	// proxyTimeout is the proxy's idle timeout in the tests (75 s in the
	// examples), and proxyPingMS wsgate's ping interval, a quarter of it:
	// on a loaded machine pings and pongs run late.
	proxyTimeout = 4 * time.Second
	proxyPingMS  = "1000"
)

// proxy is a reverse proxy the test started, in front of wsgate.
type proxy struct {
	addr   string // where it listens, TLS
	stderr *testrun.Buffer
}

// runProxy starts a proxy program and waits (at most 10 s) until addr
// accepts connections; it is stopped at the end of the test.
func runProxy(t *testing.T, addr string, program string, args ...string) *proxy {
	t.Helper()
	p := &proxy{addr: addr, stderr: &testrun.Buffer{}}
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(program), p.stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before listening:\n%s", program, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections on %s within 10 s:\n%s", program, addr, p.stderr.String())
		}
	}
}

// startNginx runs nginx with examples/nginx/wsgate.conf in front of the
// wsgate at upstream.
func startNginx(t *testing.T, pki *testPKI, upstream string) *proxy {
	t.Helper()
	return startNginxExample(t, pki, "nginx/wsgate.conf", upstream)
}

// startNginxExample runs nginx with an example's configuration in front of
// the wsgate at upstream, with the further substitutions pairs (old, new).
func startNginxExample(t *testing.T, pki *testPKI, example, upstream string, pairs ...string) *proxy {
	t.Helper()
	nginx := requireTool(t, "nginx")
	dir := t.TempDir()
	addr := freeAddr(t)
	site := substitute(t, readExample(t, example), append([]string{
		"server 127.0.0.1:8080;", "server " + upstream + ";",
		"listen 443 ssl;", "listen " + addr + " ssl;",
		"/etc/ssl/certs/dash.example.com.pem", pki.serverCert,
		"/etc/ssl/private/dash.example.com.key", pki.serverKey,
		"proxy_read_timeout 75s;", "proxy_read_timeout " + proxyTimeout.String() + ";",
		"proxy_send_timeout 75s;", "proxy_send_timeout " + proxyTimeout.String() + ";",
	}, pairs...)...)
	writeFile(t, filepath.Join(dir, "wsgate.conf"), site)
	writeFile(t, filepath.Join(dir, "nginx.conf"), `
daemon off;
worker_processes 1;
pid `+dir+`/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path `+dir+`/body;
    proxy_temp_path `+dir+`/proxy;
    fastcgi_temp_path `+dir+`/fastcgi;
    uwsgi_temp_path `+dir+`/uwsgi;
    scgi_temp_path `+dir+`/scgi;
    include `+dir+`/wsgate.conf;
}
`)
	return runProxy(t, addr, nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr")
}

// startHAProxy runs HAProxy with examples/haproxy/wsgate.cfg in front of
// the wsgate at upstream, checking its health at metrics.
func startHAProxy(t *testing.T, pki *testPKI, upstream, metrics string) *proxy {
	t.Helper()
	haproxy := requireTool(t, "haproxy")
	dir := t.TempDir()
	addr := freeAddr(t)
	pem := filepath.Join(dir, "dash.example.com.pem")
	cert, _ := os.ReadFile(pki.serverCert)
	key, _ := os.ReadFile(pki.serverKey)
	writeFile(t, pem, string(cert)+string(key))
	_, metricsPort, _ := net.SplitHostPort(metrics)
	cfg := substitute(t, readExample(t, "haproxy/wsgate.cfg"),
		"bind :443 ssl crt /etc/haproxy/certs/dash.example.com.pem", "bind "+addr+" ssl crt "+pem,
		"server wsgate1 127.0.0.1:8080 check port 9090", "server wsgate1 "+upstream+" check port "+metricsPort,
		"timeout tunnel 75s", "timeout tunnel "+strconv.Itoa(int(proxyTimeout/time.Millisecond))+"ms",
	)
	path := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, path, cfg)
	return runProxy(t, addr, haproxy, "-db", "-f", path)
}

// dial opens a WebSocket through the proxy as a browser on proxiedOrigin
// would, from clientIP, with Origin origin ("" for none). It returns the
// handshake's response too, for refusals.
func (p *proxy) dial(t *testing.T, pki *testPKI, path, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	return p.dialWith(t, pki, path, header)
}

// dialWith is dial with the handshake's headers, to which it adds Host.
func (p *proxy) dialWith(t *testing.T, pki *testPKI, path string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		TLSClientConfig:  &tls.Config{RootCAs: pki.caPool, ServerName: proxiedHost},
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}).DialContext,
	}
	header.Set("Host", proxiedHost)
	conn, resp, err := d.Dial("wss://"+p.addr+path, header)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// mustDial is dial for a handshake that must succeed.
func (p *proxy) mustDial(t *testing.T, pki *testPKI, path string) *websocket.Conn {
	t.Helper()
	conn, resp, err := p.dial(t, pki, path, proxiedOrigin)
	if err != nil {
		t.Fatalf("dial %s through the proxy: %v (%v)", path, err, resp)
	}
	resp.Body.Close()
	return conn
}

// proxiedScripts are the endpoints of the proxy tests.
func proxiedScripts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"echo.sh": "exec cat",
		"env.sh":  `echo "$REMOTE_ADDR|$HTTPS|$HTTP_HOST"`,
		"fail.sh": "exit 3",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// reader reads a connection in the background, so that pings are answered,
// and hands on what it read; it ends when reading fails.
type reader struct {
	msgs chan string
	end  chan error // the error that ended it, once
}

func startReader(t *testing.T, conn *websocket.Conn) *reader {
	r := &reader{msgs: make(chan string, 16), end: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				r.end <- err
				return
			}
			r.msgs <- string(data)
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return r
}

// behindProxy is the scenario every proxy must pass, in front of the wsgate
// g, whose sessions are proxied by p.
func behindProxy(t *testing.T, g *gatewayProc, p *proxy, pki *testPKI) {
	// Echo, and a close code from the client reaching wsgate.
	conn := p.mustDial(t, pki, "/echo.sh")
	send(t, conn, "through the proxy")
	if got := receive(t, conn); got != "through the proxy" {
		t.Errorf("echo %q", got)
	}
	if code := closeFromClient(t, conn, 4000, "bye"); code != 4000 {
		t.Errorf("close 4000 answered with %d", code)
	}
	g.waitLog(5*time.Second, "session ended", func(f map[string]string) bool { return f["close_code"] == "4000" })

	// The browser's address, scheme and host reach the child and the log.
	env := p.mustDial(t, pki, "/env.sh")
	if got := receive(t, env); got != clientIP+"|on|"+proxiedHost {
		t.Errorf("child saw REMOTE_ADDR|HTTPS|HTTP_HOST %q, want %q", got, clientIP+"|on|"+proxiedHost)
	}
	expectClose(t, env, websocket.CloseNormalClosure, "exit status 0")
	access := g.waitLog(5*time.Second, "session ended", func(f map[string]string) bool { return f["path"] == "/env.sh" })
	if access["remote"] != clientIP || !strings.HasPrefix(access["proxy"], "127.0.0.1:") {
		t.Errorf("access line remote=%q proxy=%q, want %s and the proxy", access["remote"], access["proxy"], clientIP)
	}

	// The child's exit status as the close code.
	expectClose(t, p.mustDial(t, pki, "/fail.sh"), websocket.CloseInternalServerErr, "exit status 3")

	// A foreign origin is refused; the proxied origin was accepted above.
	if _, resp, err := p.dial(t, pki, "/echo.sh", "https://evil.example"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %v %v, want 403", err, resp)
	}

	// Idle for twice the proxy's timeout: pings keep the connection.
	idle := p.mustDial(t, pki, "/echo.sh")
	r := startReader(t, idle)
	select {
	case err := <-r.end:
		t.Fatalf("idle connection ended after less than %v: %v", 2*proxyTimeout, err)
	case <-time.After(2 * proxyTimeout):
	}
	send(t, idle, "still here")
	select {
	case got := <-r.msgs:
		if got != "still here" {
			t.Errorf("echo after idling %q", got)
		}
	case err := <-r.end:
		t.Fatalf("idle connection gone: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no echo after idling")
	}

	// SIGTERM: 1001 reaches the client through the proxy.
	g.stop(syscall.SIGTERM)
	select {
	case err := <-r.end:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
			t.Errorf("after SIGTERM the client got %v, want close 1001 server shutting down", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("no close frame within 5 s of SIGTERM")
	}
	if code, _ := g.wait(10 * time.Second); code != 0 {
		t.Errorf("wsgate exited %d", code)
	}
}

// withoutPings shows the proxy's timeout is real: with pings off, an idle
// connection is cut by the proxy.
func withoutPings(t *testing.T, p *proxy, pki *testPKI) {
	conn := p.mustDial(t, pki, "/echo.sh")
	r := startReader(t, conn)
	select {
	case err := <-r.end:
		t.Logf("idle connection without pings ended as expected: %v", err)
	case <-time.After(3 * proxyTimeout):
		t.Errorf("idle connection without pings still open after %v: the proxy's timeout is not %v", 3*proxyTimeout, proxyTimeout)
	}
}

func proxiedGateway(t *testing.T, pingMS string, extra ...string) *gatewayProc {
	t.Helper()
	args := append([]string{"--pingms=" + pingMS, "--trustedproxy=127.0.0.1", "--dir=" + proxiedScripts(t)}, extra...)
	return startGateway(t, args...)
}

func TestProxy_Nginx(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	g := proxiedGateway(t, proxyPingMS)
	behindProxy(t, g, startNginx(t, pki, g.addr), pki)
}

func TestProxy_NginxCutsAnIdleConnectionWithoutPings(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	g := proxiedGateway(t, "0")
	withoutPings(t, startNginx(t, pki, g.addr), pki)
}

func TestProxy_HAProxy(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	metrics := freeAddr(t)
	g := proxiedGateway(t, proxyPingMS, "--metrics="+metrics)
	behindProxy(t, g, startHAProxy(t, pki, g.addr, metrics), pki)
}

func TestProxy_HAProxyCutsAnIdleConnectionWithoutPings(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	metrics := freeAddr(t)
	g := proxiedGateway(t, "0", "--metrics="+metrics)
	withoutPings(t, startHAProxy(t, pki, g.addr, metrics), pki)
}
