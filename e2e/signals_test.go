package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// servedCertificate returns the certificate a new TLS handshake with addr
// gets.
func servedCertificate(t *testing.T, addr string) []byte {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

// certificateDER reads the first certificate of a PEM file.
func certificateDER(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	return block.Bytes
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSignals_HangupReloadsTheCertificateWithoutDroppingConnections(t *testing.T) {
	t.Parallel()
	old, renewed := newTestPKI(t), newTestPKI(t)
	g := startGateway(t, "--ssl", "--sslcert="+old.serverCert, "--sslkey="+old.serverKey, "cat")
	if !bytes.Equal(servedCertificate(t, g.addr), certificateDER(t, old.serverCert)) {
		t.Fatal("the certificate served is not --sslcert's")
	}
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, certificateDER(t, old.caFile)))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: pool}}
	conn, resp, err := d.Dial("wss://"+g.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer conn.Close()

	// Renewed files, then SIGHUP: new handshakes get the new certificate.
	copyFile(t, renewed.serverCert, old.serverCert)
	copyFile(t, renewed.serverKey, old.serverKey)
	g.stop(syscall.SIGHUP)
	g.waitLog(5*time.Second, "TLS certificate reloaded: new handshakes get it", nil)
	if !bytes.Equal(servedCertificate(t, g.addr), certificateDER(t, renewed.serverCert)) {
		t.Error("after SIGHUP new handshakes do not get the renewed certificate")
	}
	send(t, conn, "still connected")
	if got := receive(t, conn); got != "still connected" {
		t.Errorf("the connection made before the reload echoes %q", got)
	}

	// A certificate that cannot be loaded: logged, and the last good one stays.
	if err := os.WriteFile(old.serverCert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.stop(syscall.SIGHUP)
	f := g.waitLog(5*time.Second, "TLS certificate not reloaded; the one loaded before is still served", nil)
	if f["level"] != "ERROR" || !strings.Contains(f["err"], "sslcert") {
		t.Errorf("failed reload logged as %v", f)
	}
	if !bytes.Equal(servedCertificate(t, g.addr), certificateDER(t, renewed.serverCert)) {
		t.Error("after a failed reload the last good certificate is not served")
	}
	g.stop(syscall.SIGTERM)
	if code, _ := g.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignals_HangupSaysWhatDirNeeds(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--dir="+t.TempDir())
	g.stop(syscall.SIGHUP)
	g.waitLog(5*time.Second, "--dir needs no reload: each connection looks up its script when it starts", nil)
	g.waitLog(5*time.Second, "reloaded; other settings take a restart", nil)
}

// Signals a user sends by accident never end wsgate, so never leave its
// children running without it.
func TestSignals_HangupUserSignalsAndSIGPIPEKeepWsgateServing(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `echo $$; exec cat`)
	g := startGateway(t, script)
	conn := dial(t, g.url("/"))
	pid := readPid(t, conn)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE} {
		g.stop(sig)
		time.Sleep(100 * time.Millisecond)
		send(t, conn, "after "+sig.String())
		if got := receive(t, conn); got != "after "+sig.String() {
			t.Fatalf("after %v the echo is %q", sig, got)
		}
	}
	select {
	case <-g.exited:
		t.Fatalf("wsgate exited with %d", g.exitCode)
	default:
	}
	g.waitLog(5*time.Second, "signal ignored", func(f map[string]string) bool { return f["signal"] == "user defined signal 2" })
	g.stop(syscall.SIGTERM)
	expectClose(t, conn, websocket.CloseGoingAway, "server shutting down")
	if code, _ := g.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	waitGroupGone(t, pid, 5*time.Second)
}

// A closed stderr (a log reader that went away) makes writes fail with
// EPIPE: wsgate must not die of SIGPIPE, which Go delivers for fds 1 and 2
// unless the program handles it.
func TestSignals_ClosedStderrDoesNotKillWsgate(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wsgateBin, "--port="+port, "--address=127.0.0.1", "--loglevel=info", "cat")
	cmd.Env, cmd.Stderr = cleanEnv(), w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Read the first lines, then close the pipe's read end for good.
	buf := make([]byte, 4096)
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(string(buf), "listening") {
		if _, err := r.Read(buf); err != nil {
			t.Fatalf("no listening line: %v", err)
		}
	}
	r.Close()

	for i := 0; i < 3; i++ { // each session and each SIGHUP logs: EPIPE each time
		conn := dial(t, "ws://"+addr+"/")
		send(t, conn, "x")
		if got := receive(t, conn); got != "x" {
			t.Fatalf("echo %q", got)
		}
		closeFromClient(t, conn, websocket.CloseNormalClosure, "")
		_ = cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-exited:
		t.Fatalf("wsgate died with its stderr closed: %v", waitErr)
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", waitErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wsgate did not exit after SIGTERM")
	}
}

// gone reports whether pid no longer runs: it has exited, or is a zombie
// waiting for an init that reaps.
func gone(pid int) bool {
	for _, p := range testrun.Processes() {
		if p.Pid == pid {
			return p.State == "Z"
		}
	}
	return true
}

// SIGKILL leaves wsgate no chance to stop its children: the kernel's
// parent-death signal kills each child, and a grandchild that writes dies of
// SIGPIPE at its next line, since nothing reads its output anymore.
func TestSignals_KilledWsgateLeavesNoChildRunning(t *testing.T) {
	testrun.LinuxOnlyPromise(t, "the parent-death signal kills the children of a killed wsgate")
	t.Parallel()
	script := writeScript(t, `echo $$; (while :; do echo tick; sleep 0.1; done) & echo "grandchild $!"; exec sleep 600`)
	g := startGateway(t, script)
	var pids []int
	for i := 0; i < 3; i++ {
		conn := dial(t, g.url("/"))
		child := readPid(t, conn)
		pids = append(pids, child)
		for {
			msg := receive(t, conn)
			if rest, ok := strings.CutPrefix(msg, "grandchild "); ok {
				grandchild, err := strconv.Atoi(rest)
				if err != nil {
					t.Fatal(err)
				}
				pids = append(pids, grandchild)
				break
			}
		}
	}
	g.stop(syscall.SIGKILL)
	g.wait(10 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs 5 s after wsgate was killed (children and grandchildren %v)", pid, pids)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
