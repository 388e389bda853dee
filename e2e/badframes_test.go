package e2e

// Frames a well-behaved client would not send, answered with the close
// frame the access line names; a ping flood kept bounded.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// expectLoggedAs checks that the session's access line (the only one)
// names the close frame the client got.
func expectLoggedAs(t *testing.T, g *gatewayProc, got serverFrame) {
	t.Helper()
	f := g.waitLog(5*time.Second, "session ended", nil)
	if f["close_code"] != strconv.Itoa(got.closeCode()) || f["close_reason"] != got.closeReason() {
		t.Errorf("access line says close %s %q; the client got %d %q", f["close_code"], f["close_reason"], got.closeCode(), got.closeReason())
	}
}

// A frame whose header announces more than the largest message allowed,
// up to lengths that overflow a signed 64-bit count, is answered with a
// close frame (1009, or 1002 for a length RFC 6455 forbids), not a bare TCP
// drop, and the access line names the frame the client got.
func TestProtocol_FrameAnnouncingAHugeLengthGetsACloseFrame(t *testing.T) {
	t.Parallel()
	for _, length := range []uint64{1<<20 + 1, 1<<63 - 1, 1 << 63, 1<<64 - 1} {
		t.Run(strconv.FormatUint(length, 10), func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "cat")
			conn, br, status := rawUpgrade(t, g.addr, upgradeRequest("/", g.addr))
			if status != 101 {
				t.Fatalf("handshake status %d", status)
			}
			header := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, length)
			header = append(header, 1, 2, 3, 4) // the mask key; no payload follows
			if _, err := conn.Write(header); err != nil {
				t.Fatal(err)
			}
			got, err := readServerClose(conn, br, 5*time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if c := got.closeCode(); c != 1009 && c != 1002 {
				t.Errorf("close %d %q, want 1009 or 1002", c, got.closeReason())
			}
			expectLoggedAs(t, g, got)
		})
	}
}

// A close frame's payload is empty or holds a two-byte code: one byte is a
// protocol error, answered 1002, while an empty one is answered 1000.
func TestProtocol_OneByteClosePayloadIsAnswered1002(t *testing.T) {
	t.Parallel()
	cases := []struct {
		payload []byte
		want    int
	}{
		{[]byte{0x03}, 1002},
		{nil, 1000},
		{[]byte{0x03, 0xe8}, 1000},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-bytes", len(c.payload)), func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "cat")
			conn, br, status := rawUpgrade(t, g.addr, upgradeRequest("/", g.addr))
			if status != 101 {
				t.Fatalf("handshake status %d", status)
			}
			if _, err := conn.Write(clientFrame(finClose, c.payload)); err != nil {
				t.Fatal(err)
			}
			got, err := readServerClose(conn, br, 5*time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if got.closeCode() != c.want {
				t.Errorf("a close frame with payload % x was answered %d %q, want %d", c.payload, got.closeCode(), got.closeReason(), c.want)
			}
			if c.want == 1002 {
				expectLoggedAs(t, g, got)
			}
		})
	}
}

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
