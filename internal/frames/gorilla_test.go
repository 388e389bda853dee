package frames

// A differential test: the same client byte streams are read by a gorilla
// server Conn and by the Decoder, which must deliver the same events and
// agree on whether the stream is acceptable.
//
// Known, intended differences, excused only when they explain a mismatch:
//   - gorilla ignores RSV1 on control and continuation frames when
//     compression is on; we refuse it (RFC 7692 section 6.1).
//   - gorilla reports a close frame with a one-byte payload as 1005; we
//     refuse it (RFC 6455 section 5.5.1: a body starts with a 2-byte code).
//   - gorilla limits the compressed size of a message only; we also limit
//     its decompressed size.
//   - gorilla refuses a 64-bit length with the top bit set before reading
//     the mask key; we refuse it once the header is whole, so a stream cut
//     between the two is refused by gorilla only.
//   - gorilla inflates as frames arrive; we inflate whole messages. So
//     gorilla refuses a corrupt compressed message before the control frames
//     among its later fragments, before a later protocol error in it, and
//     even when the stream ends before the message does.
// Both refuse a close reason that is not UTF-8 (gorilla with 1002, we with
// 1007); close codes are not compared.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// memConn is a net.Conn that reads a fixed stream and discards writes.
type memConn struct{ r io.Reader }

func (c *memConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// hijacker is an http.ResponseWriter whose connection is a memConn, so that
// gorilla's Upgrader makes a server Conn without a socket.
type hijacker struct {
	conn   net.Conn
	header http.Header
}

func (h *hijacker) Header() http.Header         { return h.header }
func (h *hijacker) Write(p []byte) (int, error) { return len(p), nil }
func (h *hijacker) WriteHeader(int)             {}
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// gorillaServer returns a gorilla server Conn reading in.
func gorillaServer(t testing.TB, in []byte, cfg Config) *websocket.Conn {
	req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if cfg.Deflate {
		req.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate")
	}
	u := websocket.Upgrader{EnableCompression: cfg.Deflate, CheckOrigin: func(*http.Request) bool { return true }}
	c, err := u.Upgrade(&hijacker{conn: &memConn{r: bytes.NewReader(in)}, header: http.Header{}}, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(cfg.MaxMessage)
	return c
}

// Outcomes of reading a whole stream.
const (
	endOfInput = "end of input" // whole or cut short: gorilla cannot tell
	wasClosed  = "closed"
	refused    = "refused"
)

func readGorilla(t testing.TB, in []byte, cfg Config) (events []event, outcome string, err error) {
	c := gorillaServer(t, in, cfg)
	c.SetPingHandler(func(s string) error { events = append(events, ping(s)); return nil })
	c.SetPongHandler(func(s string) error { events = append(events, pong(s)); return nil })
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
				return events, endOfInput, err
			case errors.As(err, &ce):
				return append(events, closed(ce.Code, ce.Text)), wasClosed, err
			}
			return events, refused, err
		}
		if mt == websocket.TextMessage {
			events = append(events, text(string(p)))
		} else {
			events = append(events, bin(string(p)))
		}
	}
}

func readDecoder(in []byte, cfg Config) (events []event, outcome string, d *Decoder, err error) {
	d = NewDecoder(cfg)
	h := &recorder{}
	err = d.Feed(bytes.Clone(in), h)
	switch {
	case err != nil:
		outcome = refused
	case len(h.events) > 0 && h.events[len(h.events)-1].Kind == "close":
		outcome = wasClosed
	default:
		outcome = endOfInput
	}
	return h.events, outcome, d, err
}

// isPrefix reports whether a starts b.
func isPrefix(a, b []event) bool { return len(a) <= len(b) && eventsEqual(a, b[:len(a)]) }

// excuse returns which known difference explains a mismatch, or "".
func excuse(cfg Config, ours []event, d *Decoder, err error, theirs []event, theirErr error) string {
	var pe *ProtocolError
	if errors.As(err, &pe) && isPrefix(ours, theirs) {
		switch pe.Reason {
		case "compressed control frame", "compressed continuation frame",
			"close frame with a 1-byte payload":
			return pe.Reason
		case "message too big":
			if next := len(ours); next < len(theirs) && int64(len(theirs[next].Payload)) > cfg.MaxMessage {
				return "decompressed size"
			}
		}
	}
	if err == nil && eventsEqual(ours, theirs) && errors.Is(theirErr, websocket.ErrReadLimit) &&
		d.hdrLen >= 10 && d.hdr[1]&0x7f == 127 && d.hdr[2]&0x80 != 0 {
		return "length msb before mask key"
	}
	var ce flate.CorruptInputError
	inflateErr := errors.As(theirErr, &ce) || theirErr == io.ErrUnexpectedEOF
	if inflateErr && isPrefix(theirs, ours) && onlyControls(ours[len(theirs):]) &&
		(err != nil || d.Buffered() && d.msg&rsv1Bit != 0) {
		return "corrupt compressed data seen early"
	}
	return ""
}

func onlyControls(events []event) bool {
	for _, e := range events {
		if e.Kind != "ping" && e.Kind != "pong" {
			return false
		}
	}
	return true
}

// gen makes random client streams, mostly valid, some broken.
type gen struct {
	r   *rand.Rand
	t   testing.TB
	cfg Config
}

func (g *gen) coin(p float64) bool { return g.r.Float64() < p }

func (g *gen) payload(n int) []byte {
	b := make([]byte, n)
	alphabet := "abcdefgh éü\x00\xff"
	if g.coin(0.5) {
		alphabet = "ab"
	}
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return b
}

func (g *gen) key() [4]byte {
	var k [4]byte
	for i := range k {
		k[i] = byte(g.r.UintN(256))
	}
	return k
}

func (g *gen) control() frame {
	op := []byte{opPing, opPong}[g.r.IntN(2)]
	n := g.r.IntN(20)
	if g.coin(0.2) {
		n = 120 + g.r.IntN(7) // around the 125-byte limit
	}
	return frame{op: op, payload: g.payload(n), key: g.key()}
}

func (g *gen) message() []frame {
	max := int(g.cfg.MaxMessage)
	var n int
	switch x := g.r.Float64(); {
	case x < 0.1:
		n = 0
	case x < 0.6:
		n = 1 + g.r.IntN(30)
	case x < 0.9:
		n = 100 + g.r.IntN(200)
	default:
		n = max - 3 + g.r.IntN(7)
	}
	p := g.payload(n)
	op := []byte{opText, opBinary}[g.r.IntN(2)]
	var first byte
	if g.cfg.Deflate && g.coin(0.5) {
		if g.coin(0.03) {
			p = bytes.Repeat([]byte("a"), 4*max) // small on the wire, big inflated
		}
		p = compress(g.t, p)
		first = rsv1Bit
	}
	k := 1 + g.r.IntN(4)
	var frames []frame
	for i := range k {
		a, b := i*len(p)/k, (i+1)*len(p)/k
		f := frame{op: opCont, more: i < k-1, payload: p[a:b], key: g.key()}
		if i == 0 {
			f.op, f.rsv = op, first
		}
		frames = append(frames, f)
		if i < k-1 && g.coin(0.3) {
			frames = append(frames, g.control())
		}
	}
	return frames
}

func (g *gen) closeFrame() frame {
	switch g.r.IntN(12) {
	case 0, 1:
		return frame{op: opClose, key: g.key()}
	case 2:
		return frame{op: opClose, payload: []byte{3}, key: g.key()}
	}
	codes := []int{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1013, 1014, 1015, 2999, 3000, 4999, 5000, 0}
	reason := string(g.payload(g.r.IntN(10)))
	f := closeF(codes[g.r.IntN(len(codes))], reason)
	f.key = g.key()
	return f
}

func (g *gen) mutate(f *frame) {
	switch g.r.IntN(9) {
	case 0:
		f.rsv |= []byte{rsv1Bit, 0x20, 0x10}[g.r.IntN(3)]
	case 1:
		f.op = byte(g.r.IntN(16))
	case 2:
		f.unmasked = true
	case 3:
		f.more = !f.more
	case 4:
		f.extLen = []int{2, 8}[g.r.IntN(2)]
	case 5:
		n := uint64(len(f.payload)) | 1<<63
		f.setLen, f.extLen = &n, 8
	case 6:
		n := uint64(len(f.payload) + 1 + g.r.IntN(2000))
		f.setLen = &n
	case 7:
		if len(f.payload) > 0 {
			f.payload = bytes.Clone(f.payload)
			f.payload[g.r.IntN(len(f.payload))] ^= byte(1 + g.r.IntN(255))
		}
	case 8:
		if len(f.payload) > 0 {
			f.payload = f.payload[:g.r.IntN(len(f.payload))]
		}
	}
}

func (g *gen) stream() []byte {
	var frames []frame
	for range g.r.IntN(6) {
		if g.coin(0.2) {
			frames = append(frames, g.control())
		} else {
			frames = append(frames, g.message()...)
		}
	}
	if g.coin(0.5) {
		frames = append(frames, g.closeFrame())
	}
	if len(frames) > 0 && g.coin(0.25) {
		for range 1 + g.r.IntN(2) {
			g.mutate(&frames[g.r.IntN(len(frames))])
		}
	}
	b := stream(frames...)
	if len(b) > 0 && g.coin(0.2) {
		b = b[:g.r.IntN(len(b))]
	}
	if g.coin(0.1) {
		b = append(b, g.payload(g.r.IntN(20))...)
	}
	return b
}

// compare reads in both ways and fails on an unexcused difference. It
// returns the outcome and the excuse, if any.
func compare(t *testing.T, in []byte, cfg Config) (outcome, excused string) {
	t.Helper()
	ours, outcome, d, err := readDecoder(in, cfg)
	theirs, theirOutcome, theirErr := readGorilla(t, in, cfg)
	if eventsEqual(ours, theirs) && outcome == theirOutcome {
		return outcome, ""
	}
	if why := excuse(cfg, ours, d, err, theirs, theirErr); why != "" {
		return outcome, why
	}
	t.Fatalf("config %+v, stream % x\nours:    %s %v (%v)\ngorilla: %s %v (%v)",
		cfg, in, outcome, ours, err, theirOutcome, theirs, theirErr)
	return "", ""
}

func TestDifferentialGorilla(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	outcomes := map[string]int{}
	excuses := map[string]int{}
	for _, cfg := range []Config{
		{MaxMessage: 64}, {MaxMessage: 300}, {MaxMessage: 1000},
		{MaxMessage: 64, Deflate: true}, {MaxMessage: 300, Deflate: true}, {MaxMessage: 1000, Deflate: true},
	} {
		g := &gen{r: rand.New(rand.NewPCG(uint64(cfg.MaxMessage), 7)), t: t, cfg: cfg}
		for range n {
			outcome, why := compare(t, g.stream(), cfg)
			outcomes[outcome]++
			if why != "" {
				excuses[why]++
			}
		}
	}
	// The table cases too, minus the known differences.
	for _, c := range tableCases(t) {
		outcome, why := compare(t, c.in, c.config())
		outcomes[outcome]++
		if why != "" {
			excuses[why]++
		}
	}
	t.Logf("outcomes %v; excused differences %v", outcomes, excuses)
	total := 0
	for _, k := range outcomes {
		total += k
	}
	for _, o := range []string{endOfInput, wasClosed, refused} {
		if outcomes[o] < total/20 {
			t.Errorf("only %d of %d streams %s: the generator is off", outcomes[o], total, o)
		}
	}
	excused := 0
	for _, k := range excuses {
		excused += k
	}
	if excused > total/10 {
		t.Errorf("%d of %d streams excused", excused, total)
	}
}

// clientConn is a net.Conn for a gorilla client: it answers the handshake
// (with permessage-deflate if asked) and keeps what the client sends after.
type clientConn struct {
	memConn
	deflate bool
	req     bytes.Buffer
	resp    *strings.Reader
	sent    bytes.Buffer
}

func (c *clientConn) Write(p []byte) (int, error) {
	if c.resp == nil {
		return c.req.Write(p)
	}
	return c.sent.Write(p)
}

func (c *clientConn) Read(p []byte) (int, error) {
	if c.resp == nil {
		req, err := http.ReadRequest(bufio.NewReader(&c.req))
		if err != nil {
			return 0, err
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
		if c.deflate {
			resp += "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
		}
		c.resp = strings.NewReader(resp + "\r\n")
	}
	return c.resp.Read(p)
}

// TestGorillaClient has a real gorilla client write messages (compressed
// or not, fragmented by its small write buffer, with controls between
// fragments) and checks that the Decoder, fed in random pieces, and a
// gorilla server both deliver exactly what was sent.
func TestGorillaClient(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, deflate := range []bool{false, true} {
		for round := range 50 {
			conn := &clientConn{deflate: deflate}
			dialer := websocket.Dialer{
				NetDial:           func(string, string) (net.Conn, error) { return conn, nil },
				EnableCompression: deflate,
				WriteBufferSize:   64 + r.IntN(200),
			}
			c, _, err := dialer.Dial("ws://example.com/", nil)
			if err != nil {
				t.Fatal(err)
			}
			g := &gen{r: r, t: t, cfg: Config{MaxMessage: 5000}}
			var want []event
			for range 1 + r.IntN(8) {
				if r.IntN(5) == 0 {
					p := string(g.payload(r.IntN(126)))
					if err := c.WriteControl(websocket.PingMessage, []byte(p), time.Time{}); err != nil {
						t.Fatal(err)
					}
					want = append(want, ping(p))
					continue
				}
				c.EnableWriteCompression(r.IntN(2) == 0)
				mt, p := websocket.BinaryMessage, g.payload(r.IntN(1500))
				if r.IntN(2) == 0 {
					mt = websocket.TextMessage
				}
				w, err := c.NextWriter(mt)
				if err != nil {
					t.Fatal(err)
				}
				// Write in pieces, with a pong now and then between them.
				var pongs []event
				for rest := p; len(rest) > 0; {
					k := min(len(rest), 1+r.IntN(400))
					if _, err := w.Write(rest[:k]); err != nil {
						t.Fatal(err)
					}
					rest = rest[k:]
					if r.IntN(4) == 0 {
						if err := c.WriteControl(websocket.PongMessage, []byte("between"), time.Time{}); err != nil {
							t.Fatal(err)
						}
						pongs = append(pongs, pong("between"))
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				want = append(want, pongs...)
				if mt == websocket.TextMessage {
					want = append(want, text(string(p)))
				} else {
					want = append(want, bin(string(p)))
				}
			}
			if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done")); err != nil {
				t.Fatal(err)
			}
			want = append(want, closed(1000, "done"))
			in := conn.sent.Bytes()
			cfg := Config{MaxMessage: 5000, Deflate: deflate}

			var cuts []int
			for at := r.IntN(300); at < len(in); at += 1 + r.IntN(300) {
				cuts = append(cuts, at)
			}
			got := feedPieces(t, cfg, in, cuts, &recorder{})
			theirs, _, theirErr := readGorilla(t, in, cfg)
			if got.err != nil || !eventsEqual(got.events, want) {
				t.Fatalf("deflate %v round %d: decoder gave %v (%v)\nwant %v", deflate, round, got.events, got.err, want)
			}
			if !eventsEqual(theirs, want) {
				t.Fatalf("deflate %v round %d: gorilla gave %v (%v)\nwant %v", deflate, round, theirs, theirErr, want)
			}
		}
	}
}
