package frames

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// event is one Handler call, with the payload copied.
type event struct {
	Kind    string // "text", "binary", "ping", "pong" or "close"
	Payload string
	Code    int // close code
}

func (e event) String() string {
	p := e.Payload
	if len(p) > 40 {
		p = fmt.Sprintf("%q...(%d bytes)", p[:40], len(p))
	} else {
		p = fmt.Sprintf("%q", p)
	}
	if e.Kind == "close" {
		return fmt.Sprintf("close(%d, %s)", e.Code, p)
	}
	return e.Kind + "(" + p + ")"
}

func text(s string) event { return event{Kind: "text", Payload: s} }

func bin(s string) event { return event{Kind: "binary", Payload: s} }

func ping(s string) event { return event{Kind: "ping", Payload: s} }

func pong(s string) event { return event{Kind: "pong", Payload: s} }

func closed(code int, reason string) event {
	return event{Kind: "close", Code: code, Payload: reason}
}

// recorder is a Handler that records events. It fails a test if a message
// is over max, and makes Message return failWith from message number failAt
// (1-based) on.
type recorder struct {
	events   []event
	max      int64
	tooBig   int
	failAt   int
	failWith error
	messages int
}

func (r *recorder) Message(isText bool, p []byte) error {
	kind := "binary"
	if isText {
		kind = "text"
	}
	if r.max > 0 && int64(len(p)) > r.max {
		r.tooBig++
	}
	r.events = append(r.events, event{Kind: kind, Payload: string(p)})
	r.messages++
	if r.failAt > 0 && r.messages >= r.failAt {
		return r.failWith
	}
	return nil
}

func (r *recorder) Ping(p []byte) { r.events = append(r.events, ping(string(p))) }

func (r *recorder) Pong(p []byte) { r.events = append(r.events, pong(string(p))) }

func (r *recorder) Close(code int, reason string) {
	r.events = append(r.events, closed(code, reason))
}

// frame describes one client frame for the tests to encode, valid or not.
type frame struct {
	op       byte
	more     bool // FIN clear
	rsv      byte // bits ORed into the first byte: 0x40, 0x20, 0x10
	unmasked bool
	payload  []byte
	extLen   int     // 0: shortest length form; 2 or 8: that extended form
	setLen   *uint64 // announce this length instead of len(payload)
	key      [4]byte
}

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func (f frame) encode(b []byte) []byte {
	b0 := f.op | f.rsv
	if !f.more {
		b0 |= finBit
	}
	n := uint64(len(f.payload))
	if f.setLen != nil {
		n = *f.setLen
	}
	var mask byte
	if !f.unmasked {
		mask = maskBit
	}
	switch {
	case f.extLen == 8 || f.extLen == 0 && n > 0xffff:
		b = append(b, b0, mask|127)
		b = binary.BigEndian.AppendUint64(b, n)
	case f.extLen == 2 || f.extLen == 0 && n > 125:
		b = append(b, b0, mask|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, b0, mask|byte(n))
	}
	if f.unmasked {
		return append(b, f.payload...)
	}
	b = append(b, f.key[:]...)
	start := len(b)
	b = append(b, f.payload...)
	unmask(f.key, b[start:])
	return b
}

func stream(frames ...frame) []byte {
	var b []byte
	for _, f := range frames {
		b = f.encode(b)
	}
	return b
}

func data(op byte, s string) frame { return frame{op: op, payload: []byte(s), key: testKey} }

func txtF(s string) frame { return data(opText, s) }

func binF(s string) frame { return data(opBinary, s) }

func contF(s string) frame { return data(opCont, s) }

func pingF(s string) frame { return data(opPing, s) }

func pongF(s string) frame { return data(opPong, s) }

func more(f frame) frame { f.more = true; return f }

func rsv(bits byte, f frame) frame { f.rsv |= bits; return f }

func unmasked(f frame) frame { f.unmasked = true; return f }

func withKey(k [4]byte, f frame) frame { f.key = k; return f }

func extLen(n int, f frame) frame { f.extLen = n; return f }

func announce(n uint64, f frame) frame { f.setLen = &n; return f }

func closeF(code int, reason string) frame {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return frame{op: opClose, payload: append(p, reason...), key: testKey}
}

func rawCloseF(payload string) frame { return data(opClose, payload) }

// testWriter is reused by compress: a flate.Writer is costly to make.
// The tests that compress do not run in parallel.
var testWriter *flate.Writer

// compress returns s compressed as a permessage-deflate sender does: a sync
// flush with its trailing 00 00 ff ff removed.
func compress(t testing.TB, s []byte) []byte {
	var b bytes.Buffer
	w := testWriter
	if w == nil {
		var err error
		if w, err = flate.NewWriter(&b, flate.BestSpeed); err != nil {
			t.Fatal(err)
		}
		testWriter = w
	}
	w.Reset(&b)
	if _, err := w.Write(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flush did not end with 00 00 ff ff: % x", out)
	}
	return out[:len(out)-4]
}

// deflated returns a compressed data frame (RSV1 set) carrying s.
func deflated(t testing.TB, op byte, s string) frame {
	return frame{op: op, rsv: rsv1Bit, payload: compress(t, []byte(s)), key: testKey}
}

// result is what a decoder made of a stream.
type result struct {
	events   []event
	err      error
	buffered bool
}

// sameErr reports whether two errors are equal ProtocolErrors, or the same
// other error, or both nil.
func sameErr(a, b error) bool {
	var pa, pb *ProtocolError
	if errors.As(a, &pa) && errors.As(b, &pb) {
		return *pa == *pb
	}
	return a == b
}

// feedPieces feeds s to a new decoder in pieces cut at cuts. Every piece is
// a fresh copy, scribbled over once Feed returns so that a decoder that kept
// it would decode garbage. It also checks invariants after every Feed.
func feedPieces(t testing.TB, cfg Config, s []byte, cuts []int, h *recorder) result {
	t.Helper()
	d := NewDecoder(cfg)
	var first error
	prev := 0
	for i := 0; i <= len(cuts); i++ {
		end := len(s)
		if i < len(cuts) {
			end = cuts[i]
		}
		piece := bytes.Clone(s[prev:end])
		prev = end
		err := d.Feed(piece, h)
		for j := range piece {
			piece[j] = 0xee
		}
		if err != nil && first != nil {
			t.Fatalf("Feed returned a second error %v after %v", err, first)
		}
		if first == nil {
			first = err
		}
		checkIdle(t, d)
	}
	return result{events: h.events, err: first, buffered: d.Buffered()}
}

// checkIdle fails if the decoder holds a buffer while nothing is incomplete.
func checkIdle(t testing.TB, d *Decoder) {
	t.Helper()
	if !d.Buffered() && d.buf != nil {
		t.Fatalf("decoder holds a %d-byte buffer (cap %d) while idle", len(d.buf), cap(d.buf))
	}
	if d.done && (d.buf != nil || d.Buffered()) {
		t.Fatalf("stopped decoder holds state")
	}
}

// splits returns the ways the table tests cut a stream of n bytes: whole,
// byte by byte, and in two pieces at every position.
func splits(n int) map[string][]int {
	m := map[string][]int{"whole": nil}
	bytewise := make([]int, 0, n)
	for i := 1; i < n; i++ {
		bytewise = append(bytewise, i)
	}
	m["bytewise"] = bytewise
	for i := 0; i <= n; i++ {
		m[fmt.Sprintf("cut%d", i)] = []int{i}
	}
	return m
}

func eventsEqual(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
