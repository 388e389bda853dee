package testrun

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis with a standby, as Debian's redis-sentinel runs it: a master, its
// replicas and three sentinels, all on free loopback ports, with timings
// short enough for a test (a master is down after a second of silence).

// SentinelMaster is the name the sentinels know the master by.
const SentinelMaster = "wsgatemaster"

// sentinelDownAfter is how long the sentinels wait before they call a
// silent master down; the failover follows within a few seconds.
const sentinelDownAfter = time.Second

// Sentinels is a master, its replicas and the sentinels that watch them.
type Sentinels struct {
	t         testing.TB
	Master    *Redis
	Replicas  []*Redis
	Sentinels []*Redis
	password  string
}

// StartSentinels starts a master, replicas replicas of it, and three
// sentinels (quorum 2) that watch it, and waits until the replicas are in
// sync and every sentinel knows them and the other sentinels. With a
// password, every server and the sentinels' view of them require it; the
// sentinels themselves require none.
func StartSentinels(t testing.TB, replicas int, password string) *Sentinels {
	t.Helper()
	var auth []string
	if password != "" {
		auth = []string{"--requirepass", password, "--masterauth", password}
	}
	s := &Sentinels{t: t, Master: StartRedis(t, auth...), password: password}
	for range replicas {
		args := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Master.port)}, auth...)
		s.Replicas = append(s.Replicas, StartRedis(t, args...))
	}
	for _, r := range s.Replicas {
		waitFor(t, 20*time.Second, "replica in sync", func() bool {
			return strings.Contains(r.Command(password, "INFO", "replication"), "master_link_status:up")
		})
	}
	bin := sentinelBinary(t)
	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n", SentinelMaster, s.Master.port) +
			fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", SentinelMaster, sentinelDownAfter.Milliseconds()) +
			fmt.Sprintf("sentinel failover-timeout %s 5000\n", SentinelMaster) +
			fmt.Sprintf("sentinel parallel-syncs %s 1\n", SentinelMaster)
		if password != "" {
			text += fmt.Sprintf("sentinel auth-pass %s %s\n", SentinelMaster, password)
		}
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s.Sentinels = append(s.Sentinels, startServer(t, &Redis{t: t, bin: bin, dir: dir, port: freePort(t), log: &Buffer{}, conf: conf}))
	}
	for _, sen := range s.Sentinels {
		waitFor(t, 30*time.Second, "sentinels know each other and the replicas", func() bool {
			info := sen.Command("", "SENTINEL", "MASTER", SentinelMaster)
			return strings.Contains(info, "num-other-sentinels\n2\n") && strings.Contains(info, fmt.Sprintf("num-slaves\n%d\n", replicas))
		})
	}
	return s
}

// sentinelBinary returns redis-sentinel, or redis-server, which is one in
// sentinel mode.
func sentinelBinary(t testing.TB) string {
	path, err := exec.LookPath("redis-sentinel")
	if err == nil {
		return path
	}
	return RedisServer(t)
}

// SentinelAddrs returns the sentinels' addresses, joined by commas.
func (s *Sentinels) SentinelAddrs() string {
	var addrs []string
	for _, sen := range s.Sentinels {
		addrs = append(addrs, sen.Addr())
	}
	return strings.Join(addrs, ",")
}

// URL is the bus URL that names the sentinels and the master, database db.
func (s *Sentinels) URL(db int) string {
	userinfo := ""
	if s.password != "" {
		userinfo = ":" + s.password + "@"
	}
	return fmt.Sprintf("redis+sentinel://%s%s/%s/%d", userinfo, s.SentinelAddrs(), SentinelMaster, db)
}

// MasterAddr is the master's address as the first sentinel that answers
// names it.
func (s *Sentinels) MasterAddr() string {
	for _, sen := range s.Sentinels {
		if reply := sen.Command("", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster); reply != "" {
			f := strings.Fields(reply)
			if len(f) == 2 {
				return net.JoinHostPort(f[0], f[1])
			}
		}
	}
	return ""
}

// WaitFailover waits until every sentinel names the same master, another
// than old, and it answers as a master, and returns its address. A client
// asks any sentinel: one that has not heard of the failover yet would send
// it to the dead master.
func (s *Sentinels) WaitFailover(old string, within time.Duration) string {
	s.t.Helper()
	var addr string
	waitFor(s.t, within, "a failover", func() bool {
		addr = s.MasterAddr()
		if addr == "" || addr == old {
			return false
		}
		for _, sen := range s.Sentinels {
			f := strings.Fields(sen.Command("", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster))
			if len(f) != 2 || net.JoinHostPort(f[0], f[1]) != addr {
				return false
			}
		}
		for _, r := range s.Replicas {
			if r.Addr() == addr {
				return strings.Contains(r.Command(s.password, "INFO", "replication"), "role:master")
			}
		}
		return false
	})
	return addr
}

// Command sends one command to the server, with AUTH first if password is
// set, and returns its reply flattened to lines ("" on any failure).
func (r *Redis) Command(password string, args ...string) string {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(c)
	if password != "" {
		if _, err := c.Write(encodeCommand("AUTH", password)); err != nil {
			return ""
		}
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return ""
		}
	}
	if _, err := c.Write(encodeCommand(args...)); err != nil {
		return ""
	}
	var out strings.Builder
	if err := readReply(br, &out); err != nil {
		return ""
	}
	return out.String()
}

// encodeCommand encodes a command in Redis's protocol.
func encodeCommand(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// readReply reads one reply, writing its values one to a line.
func readReply(br *bufio.Reader, out *strings.Builder) error {
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		out.WriteString(line[1:] + "\n")
	case '-':
		return fmt.Errorf("%s", line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return err
		}
		out.Write(buf[:n])
		out.WriteString("\n")
	case '*':
		n, _ := strconv.Atoi(line[1:])
		for range n {
			if err := readReply(br, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
