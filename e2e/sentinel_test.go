package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testrun"
)

// Redis with a standby (README "Redis Sentinel"): a master failover is
// survived without a restart, and clients that follow positions lose and
// repeat nothing across it.

func TestSentinel_AMasterFailoverUnderLoadLosesNothingForResumingClients(t *testing.T) {
	s := testrun.StartSentinels(t, 1, "sentinel-e2e-pw")
	args := []string{"--broadcast", "--bus=" + s.URL(1), "--replay=5000", writeScript(t, pacedScript)}
	var gs []*gatewayProc
	for range 2 {
		gs = append(gs, startGateway(t, args...))
	}
	var rs []*resumer
	for i := range 4 {
		rs = append(rs, startResumer(t, gs[i%2].url("/")))
	}
	waitOneChild(t, gs, 5*time.Second)
	for _, r := range rs {
		r.waitLines(t, 100, 10*time.Second)
	}
	old := s.MasterAddr()
	s.Master.Kill() // under load: about 100 lines a second
	killed := time.Now()
	s.WaitFailover(old, 30*time.Second)
	for _, r := range rs {
		r.waitLines(t, 100, 30*time.Second)
	}
	t.Logf("every client had 100 more lines %v after the master's death", time.Since(killed).Round(100*time.Millisecond))
	for i, r := range rs {
		r.halt()
		lines, conns, err := r.state()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if conns < 2 {
			t.Errorf("client %d made %d connections: the failover did not reach it", i, conns)
		}
		t.Logf("client %d: %d lines over %d connections, producers %v", i, lines, conns, r.producers)
	}
	for _, g := range gs {
		if strings.Contains(g.logs(), "can't parse") {
			t.Errorf("a Redis error reads as a parse error:\n%s", g.logs())
		}
	}
}
