package redisbus

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testrun"
)

// fatalConnect connects a bus on url and returns the error Connect gives,
// failing the test if there is none or retrying could mend it.
func fatalConnect(t *testing.T, url string) *busError {
	t.Helper()
	b, _ := newBus(t, url, 0)
	err := b.Connect(context.Background())
	var be *busError
	if !errors.As(err, &be) || !be.Fatal() {
		t.Fatalf("Connect(%s) = %v, want an error that retrying cannot mend", Redact(url), err)
	}
	if up, reason := b.Health(); up || reason != be.text {
		t.Errorf("Health() = %v, %q; want down, saying %q", up, reason, be.text)
	}
	return be
}

func TestHealthAWrongPasswordNoSuchDatabaseOrSomethingNotRedisIsFatalAtConnect(t *testing.T) {
	t.Parallel()
	const secret = "pw-health-4e1"
	locked := testrun.StartRedis(t, "--requirepass", secret)
	notRedis := fakeServer(t, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	for _, c := range []struct {
		url, kind, says string
	}{
		{"redis://:wrong@" + locked.Addr() + "/0", KindAuth, "WRONGPASS"},
		{"redis://" + locked.Addr() + "/0", KindAuth, "NOAUTH"},
		{"redis://:" + secret + "@" + locked.Addr() + "/99", KindNoSuchDB, "no such database"},
		{"redis://" + notRedis + "/0", KindNotRedis, "not in Redis's protocol"},
	} {
		be := fatalConnect(t, c.url)
		if be.kind != c.kind || !strings.Contains(be.text, c.says) || strings.Contains(be.text, "can't parse") {
			t.Errorf("%s: %s %q, want %s saying %q", Redact(c.url), be.kind, be.text, c.kind, c.says)
		}
		if strings.Contains(be.text, secret) {
			t.Errorf("the explanation shows the password: %q", be.text)
		}
	}
}

// fakeServer accepts connections on a loopback port and answers each with
// reply, as a server that is not Redis would; it returns its address.
func fakeServer(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(reply))
			time.Sleep(10 * time.Millisecond)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

func TestHealthIsDownWithTheReasonUntilRedisAnswersAndFollowsItWithNoStream(t *testing.T) {
	t.Parallel()
	srv := testrun.StartRedis(t)
	srv.Kill() // its port, with nothing on it yet
	b, logged := newBus(t, srv.URL(), 0)
	if err := b.Connect(context.Background()); err != nil {
		t.Fatalf("Connect with Redis not yet started: %v, want a retry in the background", err)
	}
	if up, reason := b.Health(); up || !strings.Contains(reason, "connection refused") {
		t.Fatalf("Health() = %v, %q; want down, saying connection refused", up, reason)
	}
	if b.BusUp() {
		t.Fatal("BusUp while Redis is not running")
	}
	srv.Start()
	waitFor(t, 2*probeBackoffMax, "the bus up", b.BusUp)

	// Killed with no stream attached: the monitor notices.
	srv.Kill()
	waitFor(t, 3*monitorInterval+callTimeout, "the bus down", func() bool { return !b.BusUp() })
	if n := b.ErrorCounts()[KindUnreachable]; n < 2 {
		t.Errorf("%d unreachable errors counted, want one for each loss", n)
	}
	srv.Start()
	waitFor(t, 2*probeBackoffMax, "the bus up again", b.BusUp)
	for _, line := range []string{"bus unreachable; retrying", "bus reachable again"} {
		if !strings.Contains(logged.String(), line) {
			t.Errorf("the log does not say %q:\n%s", line, logged.String())
		}
	}
}

func TestHealthARestartedRedisWithAnotherPasswordIsDownWithTheReason(t *testing.T) {
	t.Parallel()
	srv := testrun.StartRedis(t)
	b, _ := newBus(t, srv.URL(), 0)
	if err := b.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Restart("--requirepass", "changed") // the same port, now with a password
	waitFor(t, 3*monitorInterval+2*probeBackoffMax, "the bus down for the password", func() bool {
		up, reason := b.Health()
		return !up && strings.Contains(reason, "NOAUTH")
	})
}

func TestSecurityACLUserIsEnoughForTheBus(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(ACL SETUSER wsgate .*)$`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("SECURITY.md shows no ACL SETUSER wsgate line")
	}
	const password = "acl-pw-5d2e"
	args := strings.Fields(strings.Replace(string(m[1]), "LONG-RANDOM-PASSWORD", password, 1))
	srv := testrun.StartRedis(t)
	cmd := make([]any, len(args))
	for i, a := range args {
		cmd[i] = a
	}
	if err := rawClient(t, srv.URL()).Do(context.Background(), cmd...).Err(); err != nil {
		t.Fatalf("%s: %v", m[1], err)
	}
	url := "redis://wsgate:" + password + "@" + srv.Addr() + "/0"
	a, _ := attachWith(t, url, "/feed", 10)
	if err := a.bus.Connect(context.Background()); err != nil {
		t.Fatalf("Connect as the ACL user: %v", err)
	}
	b, _ := attachWith(t, url, "/feed", 10)
	leader, other := leaderAndOther(t, a, b)
	if err := leader.link.Publish(numbered(1, 5)); err != nil {
		t.Fatal(err)
	}
	if err := other.link.Send(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "delivered and taken", func() bool {
		leader.rec.mu.Lock()
		inputs := len(leader.rec.inputs)
		leader.rec.mu.Unlock()
		return len(other.rec.delivered()) == 5 && inputs == 1
	})
	time.Sleep(3 * tickInterval) // ticks run as that user too
	for _, p := range []*party{a, b} {
		if err := p.rec.failure(); err != nil {
			t.Fatalf("a link failed as the ACL user: %v", err)
		}
	}
	if n := a.bus.ErrorCounts()[KindPermission]; n != 0 {
		t.Fatalf("%d permission errors", n)
	}
	// Without a permission the bus needs, Connect says so.
	if err := rawClient(t, srv.URL()).Do(context.Background(), "ACL", "SETUSER", "wsgate", "-publish").Err(); err != nil {
		t.Fatal(err)
	}
	if be := fatalConnect(t, url); be.kind != KindPermission {
		t.Fatalf("without PUBLISH: %s %q, want a permission error", be.kind, be.text)
	}
}
