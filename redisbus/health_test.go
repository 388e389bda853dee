package redisbus

import (
	"context"
	"errors"
	"net"
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
