package e2e

// The compressed-input attack: a client sends one 64 KiB write of messages
// that each inflate to just under the largest allowed (1 MiB), to a program
// that does not read its stdin. What waits for the stdin must stay bounded
// in decoded bytes, whatever one read decodes: in per-connection mode, in
// broadcast mode, and on an instance of a bus that does not run the
// program, and in Redis between them.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsgate/wsgate/internal/testrun"
)

const (
	// attackClients is how many clients attack at once.
	attackClients = 4
	// attackWrite is what each client writes: compressed messages of
	// attackMessage bytes each, as many as fit.
	attackWrite   = 64 << 10
	attackMessage = 1<<20 - 16
	// attackGrowthKB bounds what the attack may add to a process's peak
	// memory, in kB: the bounded batches of every client, with room for the
	// garbage collector's slack; unbounded, it was 62 MiB per client.
	attackGrowthKB = 64 << 10
	// attackWatch is how long the memory is watched once the clients have
	// written: unbounded, the growth shows within a second.
	attackWatch = 4 * time.Second
)

// attackPayload is the write of one attacking client: whole compressed text
// messages, each inflating to attackMessage bytes.
func attackPayload(t *testing.T) []byte {
	t.Helper()
	frame := compressed(finText, []byte(strings.Repeat("a", attackMessage)))
	n := attackWrite / len(frame)
	if n < 30 {
		t.Fatalf("a compressed message takes %d bytes: only %d fit in one write", len(frame), n)
	}
	return []byte(strings.Repeat(string(frame), n))
}

// attack opens attackClients connections to g that negotiate
// permessage-deflate, and has each write attackPayload; the connections
// stay open until the test ends.
func attack(t *testing.T, g *gatewayProc, path string) {
	t.Helper()
	payload := attackPayload(t)
	for range attackClients {
		conn, _, resp := rawHandshake(t, g.addr, upgradeRequest(path, g.addr, "Sec-WebSocket-Extensions: permessage-deflate"))
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Extensions") == "" {
			t.Fatalf("handshake status %d, extensions %q: want 101 with permessage-deflate", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Extensions"))
		}
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(payload); err != nil {
			t.Fatalf("write the attack: %v", err)
		}
	}
}

// peakGrowth watches what a measure reports for attackWatch and returns how
// far above before it went.
func peakGrowth(before int, measure func() int) int {
	peak := before
	for end := time.Now().Add(attackWatch); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		peak = max(peak, measure())
	}
	return peak - before
}

// checkGrowth fails the test if the gateway's peak RSS grew by more than
// attackGrowthKB since before (kB of VmRSS).
func checkGrowth(t *testing.T, what string, g *gatewayProc, before int) {
	t.Helper()
	grown := peakGrowth(before, func() int { return memoryKB(t, g.pid(), "VmHWM") })
	t.Logf("%s: peak RSS grew by %d kB", what, grown)
	if grown > attackGrowthKB {
		t.Errorf("%s: peak RSS grew by %d kB under the attack of %d clients, want under %d kB", what, grown, attackClients, attackGrowthKB)
	}
}

// never is a program that never reads its stdin.
const never = `exec sleep 600`

func TestCompressedInput_BroadcastMemoryStaysBoundedWhenTheChildDoesNotRead(t *testing.T) {
	t.Parallel()
	g := startPlainGateway(t, "--broadcast", "--compress", writeScript(t, never))
	before := memoryKB(t, g.pid(), "VmRSS")
	attack(t, g, "/")
	checkGrowth(t, "broadcast", g, before)
}

func TestCompressedInput_PerConnectionMemoryStaysBoundedWhenTheChildDoesNotRead(t *testing.T) {
	t.Parallel()
	g := startPlainGateway(t, "--compress", writeScript(t, never))
	before := memoryKB(t, g.pid(), "VmRSS")
	attack(t, g, "/")
	checkGrowth(t, "per-connection", g, before)
}

// redisMemory returns a field of Redis's INFO memory, in kB.
func redisMemory(t *testing.T, rdb *redis.Client, field string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatalf("INFO memory: %v", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO memory %s: %q", field, v)
			}
			return n >> 10
		}
	}
	t.Fatalf("no %s in INFO memory", field)
	return 0
}

// The instance that does not run the program sends its clients' input to
// the one that does, through Redis: neither it, nor the leader, nor Redis
// may hold more than bounded batches of it.
func TestCompressedInput_OnABusNoInstanceNorRedisHoldsWhatTheChildDoesNotRead(t *testing.T) {
	rs := testrun.StartRedis(t)
	script := writeScript(t, never)
	leader := startPlainGateway(t, "--broadcast", "--compress", "--bus="+rs.URL(), script)
	other := startPlainGateway(t, "--broadcast", "--compress", "--bus="+rs.URL(), script)
	dial(t, leader.url("/")) // this instance leads: the program runs here
	if pids := childrenOf(leader.pid()); len(pids) != 1 {
		t.Fatalf("the leading instance runs %v, want one program", pids)
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	redisBefore := redisMemory(t, rdb, "used_memory")
	leaderBefore := memoryKB(t, leader.pid(), "VmRSS")
	otherBefore := memoryKB(t, other.pid(), "VmRSS")

	attack(t, other, "/")
	checkGrowth(t, "the instance that does not lead", other, otherBefore)
	leaderGrown := memoryKB(t, leader.pid(), "VmHWM") - leaderBefore
	redisGrown := redisMemory(t, rdb, "used_memory_peak") - redisBefore
	t.Logf("the leading instance: peak RSS grew by %d kB; Redis: used_memory_peak by %d kB", leaderGrown, redisGrown)
	if leaderGrown > attackGrowthKB {
		t.Errorf("the leading instance: peak RSS grew by %d kB, want under %d kB", leaderGrown, attackGrowthKB)
	}
	if redisGrown > attackGrowthKB {
		t.Errorf("Redis: used_memory_peak grew by %d kB, want under %d kB", redisGrown, attackGrowthKB)
	}
}
