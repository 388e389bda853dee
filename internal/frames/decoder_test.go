package frames

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

const testMax = 1000

// tcase is one table case: a client byte stream and what it must give.
type tcase struct {
	name     string
	deflate  bool
	max      int64 // testMax if 0
	in       []byte
	want     []event
	err      *ProtocolError
	buffered bool // Buffered() at the end
}

func (c tcase) config() Config {
	m := c.max
	if m == 0 {
		m = testMax
	}
	return Config{MaxMessage: m, Deflate: c.deflate}
}

func e1002(reason string) *ProtocolError { return &ProtocolError{Code: 1002, Reason: reason} }

var e1009 = &ProtocolError{Code: 1009, Reason: "message too big"}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func tableCases(t testing.TB) []tcase {
	s200 := strings.Repeat("abcdefghij", 20)
	sMax := strings.Repeat("x", testMax)
	bomb := bytes.Repeat([]byte{0}, 10<<20)
	comp := compress(t, []byte("hello, compressed world"))
	var badDeflate []byte
	for i := range 40 {
		badDeflate = append(badDeflate, byte(0xff-i))
	}

	cases := []tcase{
		// Valid streams.
		{name: "text", in: stream(txtF("hello")), want: []event{text("hello")}},
		{name: "binary", in: stream(binF("\x00\x01\xff")), want: []event{bin("\x00\x01\xff")}},
		{name: "empty text", in: stream(txtF("")), want: []event{text("")}},
		{name: "empty binary", in: stream(binF("")), want: []event{bin("")}},
		{name: "16-bit length", in: stream(txtF(s200)), want: []event{text(s200)}},
		{name: "64-bit length", in: stream(extLen(8, binF(s200))), want: []event{bin(s200)}},
		{name: "non-minimal 16-bit length", in: stream(extLen(2, txtF("hi"))), want: []event{text("hi")}},
		{name: "zero mask key", in: stream(withKey([4]byte{}, txtF("plain"))), want: []event{text("plain")}},
		{name: "two messages", in: stream(txtF("a"), binF("bc")), want: []event{text("a"), bin("bc")}},
		{name: "ping pong", in: stream(pingF("p1"), pongF("p2"), pingF("")), want: []event{ping("p1"), pong("p2"), ping("")}},
		{name: "125-byte ping", in: stream(pingF(s200[:125])), want: []event{ping(s200[:125])}},
		{
			name: "fragmented text",
			in:   stream(more(txtF("hel")), more(contF("lo ")), contF("world")),
			want: []event{text("hello world")},
		},
		{
			name: "fragmented with interleaved controls",
			in:   stream(more(binF("ab")), pingF("x"), more(contF("cd")), pongF("y"), pingF(""), contF("ef"), txtF("next")),
			want: []event{ping("x"), pong("y"), ping(""), bin("abcdef"), text("next")},
		},
		{
			name: "fragments with zero-length frames",
			in:   stream(more(txtF("")), more(contF("")), more(contF("a")), more(contF("")), contF("")),
			want: []event{text("a")},
		},
		{
			name: "fragmented empty message",
			in:   stream(more(binF("")), contF("")),
			want: []event{bin("")},
		},
		{
			name: "fragmented with 16-bit lengths",
			in:   stream(more(txtF(s200)), pingF(s200[:100]), contF(s200)),
			want: []event{ping(s200[:100]), text(s200 + s200)},
		},
		{name: "message of exactly max", in: stream(txtF(sMax)), want: []event{text(sMax)}},
		{
			name: "fragmented message of exactly max",
			in:   stream(more(txtF(sMax[:600])), contF(sMax[600:])),
			want: []event{text(sMax)},
		},
		{name: "close without payload", in: stream(rawCloseF("")), want: []event{closed(1005, "")}},
		{name: "close 1000 with reason", in: stream(closeF(1000, "bye")), want: []event{closed(1000, "bye")}},
		{name: "close 1001", in: stream(closeF(1001, "")), want: []event{closed(1001, "")}},
		{name: "close 1003", in: stream(closeF(1003, "")), want: []event{closed(1003, "")}},
		{name: "close 1007", in: stream(closeF(1007, "")), want: []event{closed(1007, "")}},
		{name: "close 1011", in: stream(closeF(1011, "")), want: []event{closed(1011, "")}},
		{name: "close 3000", in: stream(closeF(3000, "app")), want: []event{closed(3000, "app")}},
		{name: "close 4999", in: stream(closeF(4999, "héllo")), want: []event{closed(4999, "héllo")}},
		{
			name: "input after close ignored",
			in:   cat(stream(txtF("a"), closeF(1000, ""), txtF("b")), []byte{0xff, 0xff, 0xff}),
			want: []event{text("a"), closed(1000, "")},
		},
		{
			name: "close inside a fragmented message",
			in:   stream(more(txtF("part")), closeF(1001, "gone"), contF("rest")),
			want: []event{closed(1001, "gone")},
		},

		// Incomplete streams.
		{name: "first header byte", in: stream(txtF("abc"))[:1], buffered: true},
		{name: "header without mask key", in: stream(txtF("abc"))[:4], buffered: true},
		{name: "partial payload", in: stream(txtF("abc"))[:7], buffered: true},
		{name: "partial ping", in: stream(pingF("abc"))[:7], buffered: true},
		{
			name:     "between fragments",
			in:       stream(txtF("z"), more(txtF("abc")), pingF("p")),
			want:     []event{text("z"), ping("p")},
			buffered: true,
		},

		// Compression.
		{name: "compressed text", deflate: true, in: stream(deflated(t, opText, "hello, compressed world")), want: []event{text("hello, compressed world")}},
		{name: "compressed binary", deflate: true, in: stream(deflated(t, opBinary, s200)), want: []event{bin(s200)}},
		{name: "compressed empty", deflate: true, in: stream(deflated(t, opBinary, "")), want: []event{bin("")}},
		// Not even the 3 bits of a block header: zlib and gorilla refuse it too.
		{name: "compressed without data", deflate: true, in: stream(rsv(rsv1Bit, binF(""))), err: &ProtocolError{Code: 1007, Reason: "bad compressed data"}},
		{name: "uncompressed with deflate on", deflate: true, in: stream(txtF("plain")), want: []event{text("plain")}},
		{
			name:    "compressed fragmented with ping",
			deflate: true,
			in: stream(
				rsv(rsv1Bit, more(txtF(string(comp[:5])))), pingF("mid"),
				more(contF(string(comp[5:9]))), contF(string(comp[9:])),
			),
			want: []event{ping("mid"), text("hello, compressed world")},
		},
		{
			name:    "compressed to exactly max",
			deflate: true,
			in:      stream(deflated(t, opText, sMax)),
			want:    []event{text(sMax)},
		},
		{
			name:    "compressed then plain",
			deflate: true,
			in:      stream(deflated(t, opText, "one"), binF("two"), deflated(t, opBinary, "three")),
			want:    []event{text("one"), bin("two"), bin("three")},
		},
		{
			// A final block from the client ends the data; what follows is ignored.
			name:    "compressed with final block",
			deflate: true,
			in:      stream(rsv(rsv1Bit, binF("\x01\x02\x00\xfd\xffhi"))),
			want:    []event{bin("hi")},
		},

		// Header rules.
		{name: "rsv2", in: stream(rsv(0x20, txtF("a"))), err: e1002("reserved bits set")},
		{name: "rsv3", in: stream(rsv(0x10, txtF("a"))), err: e1002("reserved bits set")},
		{name: "rsv3 with deflate", deflate: true, in: stream(rsv(0x10, txtF("a"))), err: e1002("reserved bits set")},
		{name: "rsv1 without deflate", in: stream(rsv(rsv1Bit, txtF("a"))), err: e1002("reserved bits set")},
		{name: "rsv1 on ping", deflate: true, in: stream(rsv(rsv1Bit, pingF("a"))), err: e1002("compressed control frame")},
		{name: "rsv1 on close", deflate: true, in: stream(rsv(rsv1Bit, closeF(1000, ""))), err: e1002("compressed control frame")},
		{
			name:    "rsv1 on continuation",
			deflate: true,
			in:      stream(rsv(rsv1Bit, more(txtF(string(comp[:5])))), rsv(rsv1Bit, contF(string(comp[5:])))),
			err:     e1002("compressed continuation frame"),
		},
		{name: "unmasked text", in: stream(unmasked(txtF("a"))), err: e1002("unmasked client frame")},
		{name: "unmasked empty ping", in: stream(unmasked(pingF(""))), err: e1002("unmasked client frame")},
		{
			name: "unmasked after a message",
			in:   stream(txtF("a"), unmasked(txtF("b"))),
			want: []event{text("a")},
			err:  e1002("unmasked client frame"),
		},
		{name: "64-bit length msb", in: stream(announce(1<<63, extLen(8, binF("")))), err: e1002("frame length over 63 bits")},
		{name: "64-bit length all ones", in: stream(announce(^uint64(0), extLen(8, binF("")))), err: e1002("frame length over 63 bits")},
		{name: "fragmented ping", in: stream(more(pingF("a"))), err: e1002("fragmented control frame")},
		{name: "fragmented close", in: stream(more(closeF(1000, ""))), err: e1002("fragmented control frame")},
		{name: "126-byte ping", in: stream(pingF(s200[:126])), err: e1002("control frame too long")},
		{name: "ping with 16-bit length", in: stream(extLen(2, pingF("a"))), err: e1002("control frame too long")},
		{name: "pong with 64-bit length", in: stream(extLen(8, pongF("a"))), err: e1002("control frame too long")},
		{name: "continuation first", in: stream(contF("a")), err: e1002("continuation without a message")},
		{
			name: "continuation after a whole message",
			in:   stream(txtF("a"), contF("b")),
			want: []event{text("a")},
			err:  e1002("continuation without a message"),
		},
		{name: "text inside fragmented", in: stream(more(txtF("a")), txtF("b")), err: e1002("new message inside a fragmented one")},
		{name: "binary inside fragmented", in: stream(more(txtF("a")), pingF("p"), more(binF("b"))), want: []event{ping("p")}, err: e1002("new message inside a fragmented one")},

		// Size limit.
		{name: "one over max", in: stream(txtF(sMax + "y")), err: e1009},
		{name: "over max announced without payload", in: stream(txtF(sMax + "y"))[:8], err: e1009},
		{name: "huge announced length", in: stream(announce(1<<62, extLen(8, binF(""))))[:14], err: e1009},
		{name: "fragments over max", in: stream(more(txtF(sMax[:600])), contF(sMax[:401])), err: e1009},
		{name: "fragments over max without payload", in: stream(more(txtF(sMax[:600])), pingF("p"), contF(sMax[:401]))[:623], want: []event{ping("p")}, err: e1009},
		{name: "compressed over max", deflate: true, in: stream(deflated(t, opText, sMax+"y")), err: e1009},
		{name: "zip bomb", deflate: true, in: stream(frame{op: opBinary, rsv: rsv1Bit, payload: compress(t, bomb), key: testKey}), err: e1009},
		{name: "bad compressed data", deflate: true, in: stream(rsv(rsv1Bit, binF(string(badDeflate)))), err: &ProtocolError{Code: 1007, Reason: "bad compressed data"}},
		{name: "truncated compressed data", deflate: true, in: stream(rsv(rsv1Bit, binF(string(comp[:len(comp)-3])))), err: &ProtocolError{Code: 1007, Reason: "bad compressed data"}},

		// Close frames.
		{name: "close with 1-byte payload", in: stream(rawCloseF("\x03")), err: e1002("close frame with a 1-byte payload")},
		{name: "close reason not utf-8", in: stream(closeF(1000, "bad\xff")), err: &ProtocolError{Code: 1007, Reason: "close reason not utf-8"}},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		cases = append(cases, tcase{
			name: fmt.Sprintf("opcode %d", op),
			in:   stream(data(op, "a")),
			err:  e1002(fmt.Sprintf("bad opcode %d", op)),
		})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2000, 2999, 5000, 65535} {
		cases = append(cases, tcase{
			name: fmt.Sprintf("close code %d", code),
			in:   stream(closeF(code, "")),
			err:  e1002(fmt.Sprintf("bad close code %d", code)),
		})
	}
	return cases
}

func TestTable(t *testing.T) {
	for _, c := range tableCases(t) {
		t.Run(c.name, func(t *testing.T) {
			cuts := splits(len(c.in))
			if len(c.in) > 4000 {
				// The zip bomb: a few cuts are enough.
				cuts = map[string][]int{"whole": nil, "cut1": {1}, "cut3": {3}, "cutmid": {len(c.in) / 2}}
			}
			for how, cut := range cuts {
				h := &recorder{max: c.config().MaxMessage}
				got := feedPieces(t, c.config(), c.in, cut, h)
				var wantErr error
				if c.err != nil {
					wantErr = c.err
				}
				if !eventsEqual(got.events, c.want) {
					t.Fatalf("%s: events\n got %v\nwant %v", how, got.events, c.want)
				}
				if !sameErr(got.err, wantErr) {
					t.Fatalf("%s: error %v, want %v", how, got.err, wantErr)
				}
				if got.buffered != c.buffered {
					t.Fatalf("%s: Buffered() = %v, want %v", how, got.buffered, c.buffered)
				}
				if h.tooBig > 0 {
					t.Fatalf("%s: %d messages over MaxMessage delivered", how, h.tooBig)
				}
			}
		})
	}
}

// TestStopped checks that input after an error or a close is ignored.
func TestStopped(t *testing.T) {
	for _, in := range [][]byte{stream(unmasked(txtF("a"))), stream(closeF(1000, ""))} {
		d := NewDecoder(Config{MaxMessage: testMax})
		h := &recorder{}
		_ = d.Feed(in, h)
		n := len(h.events)
		if err := d.Feed(stream(txtF("after")), h); err != nil {
			t.Fatalf("Feed after stop returned %v", err)
		}
		if len(h.events) != n || d.Buffered() || d.buf != nil {
			t.Fatalf("stopped decoder went on: %v", h.events)
		}
	}
}

func TestHandlerError(t *testing.T) {
	stop := errors.New("stop")
	in := stream(txtF("a"), more(binF("b")), contF("c"), txtF("d"))
	for how, cut := range splits(len(in)) {
		h := &recorder{failAt: 2, failWith: stop}
		got := feedPieces(t, Config{MaxMessage: testMax}, in, cut, h)
		if got.err != stop {
			t.Fatalf("%s: error %v, want the handler's", how, got.err)
		}
		if want := []event{text("a"), bin("bc")}; !eventsEqual(got.events, want) {
			t.Fatalf("%s: events %v, want %v", how, got.events, want)
		}
	}
}

// TestNoBufferWhenIdle follows the decoder's buffer through a fragmented
// message fed in pieces.
func TestNoBufferWhenIdle(t *testing.T) {
	d := NewDecoder(Config{MaxMessage: testMax, Deflate: true})
	h := &recorder{}
	steps := []struct {
		in       []byte
		buffered bool
		holds    bool // d.buf != nil
	}{
		{stream(txtF("whole")), false, false},
		{stream(txtF("split"))[:8], true, true},
		{stream(txtF("split"))[8:], false, false},
		{stream(more(txtF("ab"))), true, true},
		{stream(pingF("pp"))[:7], true, true},
		{stream(pingF("pp"))[7:], true, true},
		{stream(contF("cd"))[:3], true, true},
		{stream(contF("cd"))[3:], false, false},
		{stream(pingF("qq"))[:7], true, true},
		{stream(pingF("qq"))[7:], false, false},
		{stream(deflated(t, opText, "zipped")), false, false},
		{stream(txtF("x"))[:1], true, false}, // a partial header lives in the struct
		{stream(txtF("x"))[1:], false, false},
	}
	for i, s := range steps {
		if err := d.Feed(bytes.Clone(s.in), h); err != nil {
			t.Fatal(err)
		}
		if d.Buffered() != s.buffered || (d.buf != nil) != s.holds {
			t.Fatalf("step %d: Buffered() = %v, buf = %v (cap %d); want %v, %v", i, d.Buffered(), d.buf != nil, cap(d.buf), s.buffered, s.holds)
		}
	}
	want := []event{text("whole"), text("split"), ping("pp"), text("abcd"), ping("qq"), text("zipped"), text("x")}
	if !eventsEqual(h.events, want) {
		t.Fatalf("events %v, want %v", h.events, want)
	}
	if size := unsafe.Sizeof(*d); size > 64 {
		t.Fatalf("Decoder is %d bytes", size)
	}
}

// zeroCopy checks that a frame lying whole in p reaches the handler as a
// slice of p.
type zeroCopy struct {
	recorder
	in     []byte
	copied int
}

func (z *zeroCopy) Message(isText bool, p []byte) error {
	if len(p) > 0 && !within(p, z.in) {
		z.copied++
	}
	return z.recorder.Message(isText, p)
}

func (z *zeroCopy) Ping(p []byte) {
	if len(p) > 0 && !within(p, z.in) {
		z.copied++
	}
	z.recorder.Ping(p)
}

func within(p, in []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(in)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return at >= start && at+uintptr(len(p)) <= start+uintptr(len(in))
}

func TestZeroCopy(t *testing.T) {
	in := stream(txtF("first"), pingF("ping"), binF(strings.Repeat("z", 300)))
	z := &zeroCopy{in: in}
	d := NewDecoder(Config{MaxMessage: testMax})
	if err := d.Feed(in, z); err != nil {
		t.Fatal(err)
	}
	if len(z.events) != 3 || z.copied != 0 {
		t.Fatalf("%d events, %d copied", len(z.events), z.copied)
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	master := stream(txtF(strings.Repeat("m", 64)), pingF("p"))
	in := make([]byte, len(master))
	d := NewDecoder(Config{MaxMessage: testMax})
	h := &countHandler{}
	allocs := testing.AllocsPerRun(1000, func() {
		copy(in, master)
		if err := d.Feed(in, h); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message", allocs)
	}
}

// TestZipBombCost checks that a message inflating to far more than the
// limit is refused after producing little more than the limit.
func TestZipBombCost(t *testing.T) {
	const limit = 64 << 10
	in := stream(frame{op: opBinary, rsv: rsv1Bit, payload: compress(t, make([]byte, 16<<20)), key: testKey})
	d := NewDecoder(Config{MaxMessage: limit, Deflate: true})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := d.Feed(in, &recorder{})
	runtime.ReadMemStats(&after)
	if !sameErr(err, e1009) {
		t.Fatalf("error %v", err)
	}
	// A flate reader and the output buffer; far less than 16 MiB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*limit+256<<10 {
		t.Fatalf("refusing the bomb allocated %d bytes", n)
	}
}

// TestFragmentedMessageGrowsGeometrically checks that a big message sent
// in many fragments is gathered with a few doublings of the buffer, not a
// copy of all of it for each fragment: 4 MiB in 64 KiB fragments, read 64
// KiB at a time, allocates a few times 4 MiB, not 128 MiB.
func TestFragmentedMessageGrowsGeometrically(t *testing.T) {
	const size, part = 4 << 20, 64 << 10
	var frames []frame
	for at := 0; at < size; at += part {
		f := data(opCont, strings.Repeat("f", part))
		if at == 0 {
			f.op = opBinary
		}
		if at+part < size {
			f = more(f)
		}
		frames = append(frames, f)
	}
	in := stream(frames...)
	d := NewDecoder(Config{MaxMessage: size})
	h := &countHandler{}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for rest := in; len(rest) > 0; rest = rest[min(part, len(rest)):] {
		if err := d.Feed(rest[:min(part, len(rest))], h); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if h.n != 1 {
		t.Fatalf("%d messages, want 1", h.n)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 3*size {
		t.Fatalf("gathering a %d-byte message in %d-byte fragments allocated %d bytes", size, part, n)
	}
}

func TestNewDecoderPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for MaxMessage 0")
		}
	}()
	NewDecoder(Config{})
}

// countHandler counts events without keeping them.
type countHandler struct{ n int }

func (c *countHandler) Message(bool, []byte) error { c.n++; return nil }
func (c *countHandler) Ping([]byte)                { c.n++ }
func (c *countHandler) Pong([]byte)                { c.n++ }
func (c *countHandler) Close(int, string)          { c.n++ }

// BenchmarkSmallText decodes masked 64-byte text messages, one per Feed and
// 4 KiB of them per Feed as a socket read would give.
func BenchmarkSmallText(b *testing.B) {
	one := stream(txtF(strings.Repeat("b", 64)))
	b.Run("one per Feed", func(b *testing.B) {
		in := make([]byte, len(one))
		d := NewDecoder(Config{MaxMessage: 1 << 20})
		h := &countHandler{}
		b.SetBytes(int64(len(one)))
		b.ReportAllocs()
		for b.Loop() {
			copy(in, one)
			if err := d.Feed(in, h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("4KiB chunks", func(b *testing.B) {
		master := bytes.Repeat(one, 4096/len(one))
		per := len(master) / len(one)
		in := make([]byte, len(master))
		d := NewDecoder(Config{MaxMessage: 1 << 20})
		h := &countHandler{}
		b.SetBytes(int64(len(master)))
		b.ReportAllocs()
		for b.Loop() {
			copy(in, master)
			if err := d.Feed(in, h); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/msg")
	})
	b.Run("byte by byte", func(b *testing.B) {
		d := NewDecoder(Config{MaxMessage: 1 << 20})
		h := &countHandler{}
		in := make([]byte, len(one))
		b.SetBytes(int64(len(one)))
		b.ReportAllocs()
		for b.Loop() {
			copy(in, one)
			for i := range in {
				if err := d.Feed(in[i:i+1], h); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkCompressedText decodes compressed 64-byte text messages.
func BenchmarkCompressedText(b *testing.B) {
	one := stream(deflated(b, opText, strings.Repeat("compress me ", 6)[:64]))
	in := make([]byte, len(one))
	d := NewDecoder(Config{MaxMessage: 1 << 20, Deflate: true})
	h := &countHandler{}
	b.ReportAllocs()
	for b.Loop() {
		copy(in, one)
		if err := d.Feed(in, h); err != nil {
			b.Fatal(err)
		}
	}
}

// TestInflaterReleased checks that an inflater back in the pool keeps
// neither the caller's chunk nor an output buffer over keepOut. (If the pool
// hands out a new inflater instead, the test passes vacuously.)
func TestInflaterReleased(t *testing.T) {
	d := NewDecoder(Config{MaxMessage: 1 << 20, Deflate: true})
	for _, s := range []string{"small", strings.Repeat("q", 2*keepOut)} {
		if err := d.Feed(stream(deflated(t, opText, s)), &countHandler{}); err != nil {
			t.Fatal(err)
		}
		inf := inflaters.Get().(*inflater)
		if inf.src.data != nil || inf.src.tail != nil || cap(inf.out) > keepOut {
			t.Fatalf("pooled inflater keeps input %v and a %d-byte output buffer", inf.src.data != nil || inf.src.tail != nil, cap(inf.out))
		}
		inflaters.Put(inf)
	}
}
