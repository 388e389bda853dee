package frames

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// inflateAll decompresses a permessage-deflate payload as a receiver does:
// with the tail put back.
func inflateAll(t *testing.T, payload []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader(deflateTail)))
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil && err != io.ErrUnexpectedEOF { // the tail is a sync flush, not a final block
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// parseFrame splits one server frame into its first byte and payload, and
// returns what follows it.
func parseFrame(t *testing.T, b []byte) (first byte, payload, rest []byte) {
	t.Helper()
	head := 2
	switch b[1] & 0x7f {
	case 126:
		head = 4
	case 127:
		head = 10
	}
	size := head + frameLength(b)
	if b[1]&0x80 != 0 || len(b) < size {
		t.Fatalf("not a whole server frame: % x", b[:min(len(b), 16)])
	}
	return b[0], b[head:size], b[size:]
}

// frameLength returns the payload length a frame header declares.
func frameLength(b []byte) int {
	switch n := int(b[1] & 0x7f); n {
	case 126:
		return int(b[2])<<8 | int(b[3])
	case 127:
		return int(b[6])<<24 | int(b[7])<<16 | int(b[8])<<8 | int(b[9])
	default:
		return n
	}
}

func TestAppendMessageFrameTable(t *testing.T) {
	t.Parallel()
	random := make([]byte, 4000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	repetitive := []byte(strings.Repeat(`{"symbol":"ACME","price":101.25,"venue":"XNYS"}`, 40))
	cases := []struct {
		name       string
		payload    []byte
		deflate    bool
		compressed bool
	}{
		{"plain-when-not-negotiated", repetitive, false, false},
		{"repetitive-is-compressed", repetitive, true, true},
		{"short-stays-plain", []byte("ok"), true, false},
		{"under-the-threshold-stays-plain", bytes.Repeat([]byte("a"), MinDeflateSize-1), true, false},
		{"at-the-threshold-is-compressed", bytes.Repeat([]byte("a"), MinDeflateSize), true, true},
		{"empty-stays-plain", nil, true, false},
		{"incompressible-stays-plain", random, true, false},
		{"over-64-KiB-is-compressed", bytes.Repeat(repetitive, 40), true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			prefix := []byte("before")
			frame := AppendMessage(append([]byte(nil), prefix...), OpText, c.payload, c.deflate)
			if !bytes.HasPrefix(frame, prefix) {
				t.Fatal("what the buffer held before was changed")
			}
			first, payload, rest := parseFrame(t, frame[len(prefix):])
			if len(rest) != 0 {
				t.Fatalf("%d bytes after the frame", len(rest))
			}
			if first&0x0f != OpText || first&FinBit == 0 {
				t.Errorf("first byte %#x, want a final text frame", first)
			}
			if got := first&RSV1Bit != 0; got != c.compressed {
				t.Fatalf("RSV1 %v, want %v", got, c.compressed)
			}
			if c.compressed {
				if len(payload) >= len(c.payload)/4 {
					t.Errorf("compressed to %d bytes from %d", len(payload), len(c.payload))
				}
				payload = inflateAll(t, payload)
			}
			if !bytes.Equal(payload, c.payload) {
				t.Errorf("payload round trip changed it: %d bytes, want %d", len(payload), len(c.payload))
			}
		})
	}
}

func TestDeflatedFramesOfOneMessageAreOneStream(t *testing.T) {
	t.Parallel()
	parts := [][]byte{
		bytes.Repeat([]byte("first part, "), 3000),
		bytes.Repeat([]byte("second part; "), 3000),
		[]byte("x"),
		nil, // the line ended where a part did
	}
	var frames []byte
	for i, p := range parts {
		op := byte(OpContinuation)
		if i == 0 {
			op = OpText
		}
		frames = AppendDeflatedFrame(frames, op, i == len(parts)-1, p)
	}
	var stream []byte
	for i := range parts {
		var first byte
		var payload []byte
		first, payload, frames = parseFrame(t, frames)
		wantFirst := byte(OpContinuation)
		switch i {
		case 0:
			wantFirst = OpText | RSV1Bit
		case len(parts) - 1:
			wantFirst |= FinBit
		}
		if first != wantFirst {
			t.Errorf("frame %d: first byte %#x, want %#x", i, first, wantFirst)
		}
		stream = append(stream, payload...)
	}
	if got, want := inflateAll(t, stream), bytes.Join(parts, nil); !bytes.Equal(got, want) {
		t.Errorf("inflated %d bytes, want %d", len(got), len(want))
	}
}

func TestAcceptsDeflateTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, resp string
		want       bool
	}{
		{"gorilla", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n" +
			"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n", true},
		{"lower-case", "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-extensions:permessage-deflate\r\n\r\n", true},
		{"none", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false},
		{"other-header", "HTTP/1.1 101 Switching Protocols\r\nX-Note: permessage-deflate\r\n\r\n", false},
		{"after-the-head", "HTTP/1.1 101 Switching Protocols\r\n\r\nSec-WebSocket-Extensions: permessage-deflate\r\n", false},
	}
	for _, c := range cases {
		if got := AcceptsDeflate([]byte(c.resp)); got != c.want {
			t.Errorf("%s: AcceptsDeflate = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTruncateReasonTable(t *testing.T) {
	t.Parallel()
	a := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name   string
		reason string
		want   string
	}{
		{"empty kept", "", ""},
		{"short kept", "exit status 1", "exit status 1"},
		{"122 bytes kept", a(122), a(122)},
		{"exactly 123 bytes kept", a(123), a(123)},
		{"124 bytes cut to 123", a(124), a(123)},
		{"long ASCII cut to 123", a(1000), a(123)},
		{"2-byte character ending at 123 kept", a(121) + "é" + "b", a(121) + "é"},
		{"2-byte character across the cut dropped whole", a(122) + "é", a(122)},
		{"3-byte character ending at 123 kept", a(120) + "€" + "b", a(120) + "€"},
		{"3-byte character one byte over dropped whole", a(121) + "€", a(121)},
		{"3-byte character two bytes over dropped whole", a(122) + "€", a(122)},
		{"4-byte character over the cut dropped whole", a(120) + "😀", a(120)},
		{"4-byte character ending at 123 kept", a(119) + "😀" + "b", a(119) + "😀"},
		{"4-byte characters only", strings.Repeat("😀", 40), strings.Repeat("😀", 30)},
		{"multi-byte text of exactly 123 bytes kept", strings.Repeat("€", 41), strings.Repeat("€", 41)},
		{"continuation bytes only cut to nothing", strings.Repeat("\x80", 200), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := TruncateReason(c.reason)
			if got != c.want {
				t.Errorf("TruncateReason(%d bytes) = %q (%d bytes), want %q (%d bytes)", len(c.reason), got, len(got), c.want, len(c.want))
			}
			if len(got) > 123 || !strings.HasPrefix(c.reason, got) || utf8.ValidString(c.reason) && !utf8.ValidString(got) {
				t.Errorf("TruncateReason(%d bytes) = %q: not a valid prefix of at most 123 bytes", len(c.reason), got)
			}
		})
	}
}

// A compressor is kept for the next message once one is done with: each
// costs about 1 MiB to make.
func TestACompressorIsKeptForTheNextMessage(t *testing.T) {
	AppendMessage(nil, OpText, bytes.Repeat([]byte("compress me "), 100), true)
	if n := len(compressors); n < 1 {
		t.Error("no compressor was kept for the next message")
	}
}
