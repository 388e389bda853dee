package main

import (
	"bytes"
	"testing"
	"time"
)

// A client that floods pings and reads nothing makes wsgate owe it pongs it
// cannot send: what waits stays bounded (one pong, answering the latest
// ping), and when the client is dropped, the log says what it did rather
// than "ping timeout" or "write timeout".
func TestProtocol_PingFloodFromAClientThatReadsNothingIsBoundedAndLoggedAsSuch(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--writetimeout=2", "cat")
	conn, _, status := rawUpgrade(t, g.addr, upgradeRequest("/", g.addr))
	if status != 101 {
		t.Fatalf("handshake status %d", status)
	}
	before := memoryKB(t, g.pid(), "VmRSS")
	pings := bytes.Repeat(clientFrame(finPing, bytes.Repeat([]byte("p"), 125)), 100)
	sent := 0
	for start := time.Now(); time.Since(start) < 15*time.Second; sent += 100 {
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(pings); err != nil {
			break // dropped
		}
	}
	f := g.waitLog(5*time.Second, "session ended", nil)
	if f["close_code"] != "1006" || f["close_reason"] != "ping flood: client reads nothing" {
		t.Errorf("after %d pings, the access line says close %s %q, want 1006 %q", sent, f["close_code"], f["close_reason"], "ping flood: client reads nothing")
	}
	const limitKB = 64 << 10
	if grown := memoryKB(t, g.pid(), "VmHWM") - before; grown > limitKB {
		t.Errorf("wsgate's peak RSS grew by %d kB during a flood of %d pings, want under %d kB", grown, sent, limitKB)
	}
}
