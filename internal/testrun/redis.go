package testrun

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisStartTimeout bounds how long a redis-server may take to answer its
// first PING.
const redisStartTimeout = 10 * time.Second

// Redis is a redis-server that a test started on a free loopback port, in a
// temporary directory, with no persistence. It is killed at the end of the
// test. Its methods are for the test's goroutine.
type Redis struct {
	t    testing.TB
	bin  string
	args []string
	dir  string
	port int
	log  *Buffer
	tls  bool   // the port speaks TLS only
	conf string // a sentinel's configuration file; "" for a data server

	started bool // once: a restart keeps the port

	cmd    *exec.Cmd
	exited chan struct{}
}

// RedisServer returns the path of redis-server. Without it, the test is
// skipped, but fails under CI (CI=true), which must install it.
func RedisServer(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("redis-server not found: CI must install it (Debian: redis-server): %v", err)
	}
	t.Skipf("redis-server not found (Debian: apt-get install redis-server): %v", err)
	return ""
}

// StartRedis starts a redis-server on a free loopback port with extra
// arguments (such as "--requirepass", "x"), waits until it answers, and
// kills it when the test ends.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return startServer(t, &Redis{t: t, bin: RedisServer(t), args: extra, dir: t.TempDir(), port: freePort(t), log: &Buffer{}})
}

// startServer starts r and kills it when the test ends, showing its log if
// the test failed.
func startServer(t testing.TB, r *Redis) *Redis {
	t.Helper()
	r.Start()
	t.Cleanup(func() {
		r.Kill()
		if t.Failed() {
			t.Logf("%s on port %d, log:\n%s", r.bin, r.port, r.log.String())
		}
	})
	return r
}

// StartRedisTLS is StartRedis with the port speaking TLS only, with the
// server's certificate and key (PEM files), and without client
// certificates.
func StartRedisTLS(t testing.TB, certFile, keyFile, caFile string, extra ...string) *Redis {
	t.Helper()
	tlsArgs := []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no"}
	return startServer(t, &Redis{t: t, bin: RedisServer(t), args: append(tlsArgs, extra...), dir: t.TempDir(),
		port: freePort(t), log: &Buffer{}, tls: true})
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is the server's redis:// URL, database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Pid is the running server's process id.
func (r *Redis) Pid() int { return r.cmd.Process.Pid }

// Start starts the server (again, after Kill) on its port, and waits until
// it answers a PING on a socket of its own. At the first start, a port that
// another process took meanwhile is given up for another, twice at most; a
// restart keeps the port, as a restarted Redis would.
func (r *Redis) Start() {
	r.t.Helper()
	for attempt := 1; ; attempt++ {
		err := r.start()
		if err == nil {
			r.started = true
			return
		}
		if r.started || attempt == 3 || !strings.Contains(r.log.String(), "Address already in use") {
			r.t.Fatalf("redis-server on port %d: %v:\n%s", r.port, err, r.log.String())
		}
		r.port = freePort(r.t)
	}
}

// Restart kills the server and starts it again on its port with extra
// arguments instead of the ones it had, as an operator who changed its
// configuration would.
func (r *Redis) Restart(extra ...string) {
	r.t.Helper()
	r.Kill()
	r.args = extra
	r.Start()
}

// start runs the server once and waits until it answers on its own socket.
func (r *Redis) start() error {
	ports := []string{"--port", strconv.Itoa(r.port)}
	if r.tls {
		ports = []string{"--port", "0", "--tls-port", strconv.Itoa(r.port)}
	}
	args := append(append(ports, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", ""), r.args...)
	if r.conf != "" { // a sentinel: its file first, which it rewrites as it learns
		args = append([]string{r.conf, "--sentinel"}, ports...)
		args = append(args, "--bind", "127.0.0.1", "--dir", r.dir, "--logfile", "")
	}
	r.cmd = exec.Command(r.bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = diesWithTheTest()
	if err := r.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	r.exited = exited
	cmd := r.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(redisStartTimeout)
	for !r.answers() || !ListensOn(cmd.Process.Pid, r.port) {
		select {
		case <-exited:
			return errors.New("exited at start")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v", redisStartTimeout)
		}
	}
	return nil
}

// answers reports whether the server replies to a PING, with PONG or with
// an authentication error.
func (r *Redis) answers() bool {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return false
	}
	if r.tls { // a probe: whose certificate it is does not matter here
		c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// Kill kills the server with SIGKILL, as a crash would, and waits until it
// has exited. Killing a server that is not running does nothing.
func (r *Redis) Kill() {
	if r.cmd == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.t.Errorf("redis-server pid %d did not die of SIGKILL", r.cmd.Process.Pid)
	}
}
