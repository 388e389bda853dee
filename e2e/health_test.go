package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// Health follows the bus (README "Metrics and health"): ready only while
// Redis answers, and a bus that retrying cannot mend ends the start-up.

// waitHealthz polls /healthz until it answers code with a body holding
// want (at most within), and returns the body.
func waitHealthz(t *testing.T, metrics string, code int, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, body := httpGet(t, "http://"+metrics+"/healthz")
		if got == code && strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz answers %d %q, want %d with %q", got, body, code, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHealth_FollowsTheBusWithRedisAbsentPresentAndKilled(t *testing.T) {
	redis := testrun.StartRedis(t)
	redis.Kill() // absent at first
	n := listenNotify(t)
	metrics := freeAddr(t)
	g := startGatewayEnv(t, []string{"NOTIFY_SOCKET=" + n.path}, "--broadcast", "--bus="+redis.URL(), "--metrics="+metrics, "cat")

	// Absent: not ready, and everyone can tell why.
	body := waitHealthz(t, metrics, http.StatusServiceUnavailable, "connection refused", 5*time.Second)
	if !strings.Contains(body, "bus redis://"+redis.Addr()) {
		t.Errorf("/healthz says %q: it does not name the bus", body)
	}
	status, _ := n.waitFor(t, "STATUS=", 5*time.Second)
	if !strings.Contains(status, "waiting for the bus") || !strings.Contains(status, "EXTEND_TIMEOUT_USEC=") || strings.Contains(status, "READY=1") {
		t.Errorf("the first notification is %q, want STATUS= saying it waits for the bus, a longer start timeout, no READY=1", status)
	}
	waitMetric(t, metrics, 0, "wsgate_bus_up")
	expectClose(t, dial(t, g.url("/")), websocket.CloseTryAgainLater, "bus unavailable")

	// Present: ready.
	redis.Start()
	ready, before := n.waitFor(t, "READY=1", 10*time.Second)
	for _, m := range before {
		if strings.Contains(m, "READY=1") {
			t.Errorf("READY=1 before Redis answered: %q", m)
		}
	}
	if !strings.Contains(ready, "STATUS=connections: 0, children: 0") {
		t.Errorf("READY=1 came as %q", ready)
	}
	waitHealthz(t, metrics, http.StatusOK, "ok", 5*time.Second)
	waitMetric(t, metrics, 1, "wsgate_bus_up")
	c := dial(t, g.url("/"))
	send(t, c, "hello")
	if got := receive(t, c); got != "hello" {
		t.Fatalf("got %q", got)
	}
	waitMetric(t, metrics, 1, "wsgate_bus_leading_streams")
	g.waitLog(5*time.Second, "leading the stream", nil) // at the default level: INFO

	// Killed: not ready again, until it is back.
	redis.Kill()
	waitHealthz(t, metrics, http.StatusServiceUnavailable, "bus redis://", 5*time.Second)
	n.waitFor(t, "waiting for the bus", 5*time.Second)
	s := waitMetric(t, metrics, 0, "wsgate_bus_up")
	if v, _ := s.value("wsgate_bus_errors_total", "kind=unreachable"); v < 1 {
		t.Errorf("wsgate_bus_errors_total{kind=unreachable} = %v, want at least 1", v)
	}
	waitMetric(t, metrics, 0, "wsgate_bus_leading_streams")
	redis.Start()
	waitHealthz(t, metrics, http.StatusOK, "ok", 10*time.Second)
}

func TestHealth_AWrongPasswordOrNoSuchDatabaseExitsAtStartUpNamingBusAndTheFix(t *testing.T) {
	t.Parallel()
	const secret = "right-pw-77"
	redis := testrun.StartRedis(t, "--requirepass", secret)
	notRedis := freeAddr(t)
	for _, c := range []struct {
		url, says string
	}{
		{"redis://:wrong-pw@" + redis.Addr() + "/0", "WRONGPASS"},
		{"redis://" + redis.Addr() + "/0", "NOAUTH"},
		{"redis://:" + secret + "@" + redis.Addr() + "/99", "no such database"},
	} {
		_, stderr, code := runCLI(t, nil, "--broadcast", "--bus="+c.url, "cat")
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "wsgate: --bus=") || !strings.Contains(stderr, c.says) {
			t.Errorf("--bus=%s: exit %d, %q; want one line naming --bus and saying %q", c.url, code, stderr, c.says)
		}
		if strings.Contains(stderr, secret) || strings.Contains(stderr, "wrong-pw") {
			t.Errorf("the error shows a password: %q", stderr)
		}
	}
	// A refused connection is not such a fault: Redis may start later.
	g := startGateway(t, "--broadcast", "--bus=redis://"+notRedis+"/0", "cat")
	g.waitLog(5*time.Second, "bus unreachable; retrying", nil)
}
