package e2e

// A broadcast member over plain TCP is read by wsgate's own frame decoder,
// not gorilla's: what a client sends, well-formed or not, must be answered
// as in per-connection mode.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

// Client frame first bytes beyond raw_test.go's.
const (
	textNoFin   = 0x01
	contNoFin   = 0x00
	contFin     = 0x80
	binaryFin   = 0x82
	rsv2Text    = 0xa1
	badOpcode   = 0x83
	fragPing    = 0x09
	finPong     = 0x8a
	closeFrameB = 0x88
)

// closeWith is a close frame's payload: a code and a reason.
func closeWith(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// unmasked is a client text frame without a mask, which RFC 6455 forbids.
func unmasked(payload string) []byte {
	return append([]byte{finText, byte(len(payload))}, payload...)
}

func TestBroadcastMember_BadFramesGetTheirCloseFrameAndTheAccessLineNamesIt(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		frame []byte
		want  int
	}{
		{"unmasked", unmasked("hi"), 1002},
		{"reserved-bit", clientFrame(rsv2Text, []byte("hi")), 1002},
		{"bad-opcode", clientFrame(badOpcode, []byte("hi")), 1002},
		{"fragmented-ping", clientFrame(fragPing, nil), 1002},
		{"continuation-alone", clientFrame(contFin, []byte("hi")), 1002},
		{"one-byte-close", clientFrame(closeFrameB, []byte{3}), 1002},
		{"bad-close-code", clientFrame(closeFrameB, closeWith(1005, "")), 1002},
		{"invalid-utf8-text", clientFrame(finText, []byte{0xff, 0xfe}), 1007},
		{"over-maxframesize", clientFrame(binaryFin, bytes.Repeat([]byte("x"), 2000)), 1009},
		{"huge-length", append(binary.BigEndian.AppendUint64([]byte{binaryFin, 0x80 | 127}, 1<<63), 1, 2, 3, 4), 1002},
		{"over-maxframesize-announced", append(binary.BigEndian.AppendUint64([]byte{binaryFin, 0x80 | 127}, 1<<40), 1, 2, 3, 4), 1009},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "--broadcast", "--maxframesize=1000", "cat")
			conn, br, status := rawUpgrade(t, g.addr, upgradeRequest("/", g.addr))
			if status != 101 {
				t.Fatalf("handshake status %d", status)
			}
			if _, err := conn.Write(c.frame); err != nil {
				t.Fatal(err)
			}
			got, err := readServerClose(conn, br, 10*time.Second)
			if err != nil {
				t.Fatalf("no close frame: %v", err)
			}
			if got.closeCode() != c.want {
				t.Errorf("answered %d %q, want %d", got.closeCode(), got.closeReason(), c.want)
			}
			expectLoggedAs(t, g, got)
		})
	}
}

// readTexts reads n text messages, answering nothing; control frames are
// skipped.
func readTexts(t *testing.T, conn net.Conn, br *bufio.Reader, n int) []string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	var got []string
	for len(got) < n {
		f, err := readServerFrame(br)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		switch f.op {
		case 0x1:
			got = append(got, string(f.payload))
		case 0x8:
			t.Fatalf("closed %d %q after %q", f.closeCode(), f.closeReason(), got)
		}
	}
	return got
}

func TestBroadcastMember_MessagesSentWithTheHandshakeFragmentedAndAmongControlFramesReachTheChild(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--broadcast", "cat")
	conn, br, status := rawUpgrade(t, g.addr, upgradeRequest("/", g.addr))
	if status != 101 {
		t.Fatalf("handshake status %d", status)
	}
	// Frames in one write, so that they are read together: a message, and
	// one in fragments with control frames among them.
	var frames []byte
	frames = append(frames, clientFrame(finText, []byte("one"))...)
	frames = append(frames, clientFrame(textNoFin, []byte("tw"))...)
	frames = append(frames, clientFrame(finPing, []byte("p"))...)
	frames = append(frames, clientFrame(finPong, nil)...)
	frames = append(frames, clientFrame(contNoFin, []byte("o-"))...)
	frames = append(frames, clientFrame(contFin, []byte("parts"))...)
	if _, err := conn.Write(frames); err != nil {
		t.Fatal(err)
	}
	// A message whose frame arrives a byte at a time.
	for _, b := range clientFrame(finText, []byte(strings.Repeat("slow", 40))) {
		if _, err := conn.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	got := readTexts(t, conn, br, 3)
	want := []string{"one", "two-parts", strings.Repeat("slow", 40)}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d = %q, want %q (all: %q)", i, got[i], want[i], got)
		}
	}
	// The close handshake ends it cleanly.
	if _, err := conn.Write(clientFrame(closeFrameB, closeWith(1000, "bye"))); err != nil {
		t.Fatal(err)
	}
	reply, err := readServerClose(conn, br, 10*time.Second)
	if err != nil || reply.closeCode() != 1000 {
		t.Fatalf("close answered %d (%v), want 1000", reply.closeCode(), err)
	}
	f := g.waitLog(10*time.Second, "session ended", nil)
	if f["close_code"] != "1000" || f["msgs_in"] != "3" {
		t.Errorf("access line: close %s, msgs_in %s; want 1000 and 3", f["close_code"], f["msgs_in"])
	}
}

func TestBroadcastMember_PingIsAnsweredWithItsPayload(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--broadcast", "cat")
	conn, br, status := rawUpgrade(t, g.addr, upgradeRequest("/", g.addr))
	if status != 101 {
		t.Fatalf("handshake status %d", status)
	}
	if _, err := conn.Write(clientFrame(finPing, []byte("are you there"))); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := readServerFrame(br)
		if err != nil {
			t.Fatal(err)
		}
		if f.op == 0xa {
			if string(f.payload) != "are you there" {
				t.Fatalf("pong %q", f.payload)
			}
			return
		}
	}
}
