package e2e

// One table of what a client may send after the handshake, malformed or at
// the edge of what is allowed (frames, compressed data, extension offers,
// close payloads), run against the real binary in per-connection mode and
// in broadcast mode, with and without --compress: the same input gets the
// same close code in every mode, and the child's stdin gets exactly the
// whole messages that came before a refused one, nothing of it.

import (
	"bytes"
	"compress/flate"
	"crypto/tls"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// deflateUse says which gateways a case runs on.
type deflateUse int

const (
	eitherWay   deflateUse = iota // with and without --compress
	withDeflate                   // --compress, permessage-deflate negotiated
	noDeflate                     // without --compress
)

// protocolCase is one input and what every mode must answer it with.
type protocolCase struct {
	name string
	use  deflateUse
	// offer is the Sec-WebSocket-Extensions header sent: "permessage-deflate"
	// on a --compress gateway when empty, none on another.
	offer string
	// declined says the offer is to be declined although --compress is on.
	declined bool
	input    []byte
	code     int    // the server's close code, or its answer to the client's
	stdin    string // all the child reads
}

// Frames a table case is made of.
func text(s string) []byte { return clientFrame(finText, []byte(s)) }

func fragment(first byte, s string) []byte { return clientFrame(first, []byte(s)) }

func clientClose(payload []byte) []byte { return clientFrame(closeFrameB, payload) }

// bye is a client's close frame, which the server answers with 1000.
var bye = clientClose(closeWith(1000, "bye"))

// announcing is the header of a binary frame that announces length bytes,
// with its mask key, and no payload.
func announcing(length uint64) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{binaryFin, 0x80 | 127}, length), 1, 2, 3, 4)
}

// deflateRaw compresses p as a permessage-deflate sender does: a raw
// DEFLATE stream ended by a sync flush whose 00 00 ff ff tail is cut.
func deflateRaw(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed) // an error only for a bad level
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// compressed is a whole message with first byte first (RSV1 added), its
// payload compressed.
func compressed(first byte, p []byte) []byte { return clientFrame(first|0x40, deflateRaw(p)) }

// tableMaxFrame is --maxframesize for the table's gateways.
const tableMaxFrame = 1000

func protocolCases() []protocolCase {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ok := text("ok") // a whole message before the bad input: it reaches the child
	zipped := compressed(finText, []byte("zipped"))
	return []protocolCase{
		// Accepted: what the child gets, then the close handshake.
		{name: "messages-and-close-in-one-write", input: cat(text("a"), text("b"), bye), code: 1000, stdin: "a\nb\n"},
		{name: "empty-close", input: cat(ok, clientClose(nil)), code: 1000, stdin: "ok\n"},
		{name: "character-split-across-fragments", input: cat(fragment(textNoFin, "caf\xc3"), fragment(contFin, "\xa9"), bye), code: 1000, stdin: "café\n"},
		{name: "control-frames-among-fragments", input: cat(fragment(textNoFin, "tw"), clientFrame(finPing, []byte("p")), clientFrame(finPong, nil), fragment(contFin, "o"), bye), code: 1000, stdin: "two\n"},
		{name: "message-at-maxframesize", input: cat(text(strings.Repeat("m", tableMaxFrame)), bye), code: 1000, stdin: strings.Repeat("m", tableMaxFrame) + "\n"},
		{name: "compressed-message", use: withDeflate, input: cat(ok, zipped, bye), code: 1000, stdin: "ok\nzipped\n"},
		{name: "compressed-in-fragments", use: withDeflate, input: cat(fragment(textNoFin|0x40, string(deflateRaw([]byte("in parts")))), fragment(contFin, ""), bye), code: 1000, stdin: "in parts\n"},

		// Frames RFC 6455 section 5 forbids: 1002.
		{name: "unmasked", input: cat(ok, unmasked("hi")), code: 1002, stdin: "ok\n"},
		{name: "rsv1-without-deflate", use: noDeflate, input: cat(ok, zipped), code: 1002, stdin: "ok\n"},
		{name: "rsv1-on-ping", input: cat(ok, clientFrame(finPing|0x40, nil)), code: 1002, stdin: "ok\n"},
		{name: "rsv1-on-continuation", input: cat(ok, fragment(textNoFin, "a"), fragment(contFin|0x40, "b")), code: 1002, stdin: "ok\n"},
		{name: "rsv2", input: cat(ok, clientFrame(finText|0x20, []byte("hi"))), code: 1002, stdin: "ok\n"},
		{name: "rsv3", input: cat(ok, clientFrame(finText|0x10, []byte("hi"))), code: 1002, stdin: "ok\n"},
		{name: "unknown-data-opcode", input: cat(ok, clientFrame(badOpcode, []byte("hi"))), code: 1002, stdin: "ok\n"},
		{name: "unknown-control-opcode", input: cat(ok, clientFrame(0x8b, nil)), code: 1002, stdin: "ok\n"},
		{name: "fragmented-ping", input: cat(ok, clientFrame(fragPing, nil)), code: 1002, stdin: "ok\n"},
		{name: "ping-over-125-bytes", input: cat(ok, clientFrame(finPing, bytes.Repeat([]byte("p"), 126))), code: 1002, stdin: "ok\n"},
		{name: "length-with-top-bit-set", input: cat(ok, announcing(1<<63)), code: 1002, stdin: "ok\n"},
		{name: "continuation-without-start", input: cat(ok, fragment(contFin, "x")), code: 1002, stdin: "ok\n"},
		{name: "new-message-inside-fragmented", input: cat(ok, fragment(textNoFin, "a"), text("b")), code: 1002, stdin: "ok\n"},

		// Close payloads (RFC 6455 sections 5.5.1 and 7.4).
		{name: "close-with-1-byte", input: cat(ok, clientClose([]byte{3})), code: 1002, stdin: "ok\n"},
		{name: "close-code-999", input: cat(ok, clientClose(closeWith(999, ""))), code: 1002, stdin: "ok\n"},
		{name: "close-code-1005", input: cat(ok, clientClose(closeWith(1005, ""))), code: 1002, stdin: "ok\n"},
		{name: "close-code-1015", input: cat(ok, clientClose(closeWith(1015, ""))), code: 1002, stdin: "ok\n"},
		{name: "close-code-2999", input: cat(ok, clientClose(closeWith(2999, ""))), code: 1002, stdin: "ok\n"},
		{name: "close-code-5000", input: cat(ok, clientClose(closeWith(5000, ""))), code: 1002, stdin: "ok\n"},
		{name: "close-code-4000", input: cat(ok, clientClose(closeWith(4000, "mine"))), code: 4000, stdin: "ok\n"},
		{name: "close-reason-invalid-utf8", input: cat(ok, clientClose(closeWith(1000, "bad \xff"))), code: 1007, stdin: "ok\n"},

		// Payloads that do not decode: 1007.
		{name: "text-invalid-utf8", input: cat(ok, text("bad \xff")), code: 1007, stdin: "ok\n"},
		{name: "text-invalid-utf8-in-a-later-fragment", input: cat(ok, fragment(textNoFin, "fine"), fragment(contFin, "\xff")), code: 1007, stdin: "ok\n"},
		{name: "text-character-cut-across-fragments", input: cat(ok, fragment(textNoFin, "\xc3"), fragment(contFin, "(")), code: 1007, stdin: "ok\n"},
		{name: "corrupt-deflate-data", use: withDeflate, input: cat(ok, clientFrame(binaryFin|0x40, []byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb})), code: 1007, stdin: "ok\n"},
		{name: "compressed-text-invalid-utf8", use: withDeflate, input: cat(ok, compressed(finText, []byte("bad \xff"))), code: 1007, stdin: "ok\n"},

		// Messages over --maxframesize: 1009, and nothing of them is written.
		{name: "over-maxframesize", input: cat(ok, clientFrame(binaryFin, bytes.Repeat([]byte("x"), tableMaxFrame+1))), code: 1009, stdin: "ok\n"},
		{name: "over-maxframesize-in-fragments", input: cat(ok, fragment(textNoFin, strings.Repeat("x", 600)), fragment(contFin, strings.Repeat("y", 600))), code: 1009, stdin: "ok\n"},
		{name: "over-maxframesize-announced", input: cat(ok, announcing(1<<40)), code: 1009, stdin: "ok\n"},
		{name: "over-maxframesize-after-inflation", use: withDeflate, input: cat(ok, compressed(binaryFin, bytes.Repeat([]byte("z"), 50*tableMaxFrame))), code: 1009, stdin: "ok\n"},

		// Extension offers (RFC 7692 sections 5 and 7): an accepted one
		// decodes the compressed message; a declined one makes RSV1 a
		// protocol error.
		{name: "offer-client-max-window-bits", use: withDeflate, offer: "permessage-deflate; client_max_window_bits", input: cat(zipped, bye), code: 1000, stdin: "zipped\n"},
		{name: "offer-client-max-window-bits-9", use: withDeflate, offer: "permessage-deflate; client_max_window_bits=9", input: cat(zipped, bye), code: 1000, stdin: "zipped\n"},
		{name: "offer-no-context-takeover-both", use: withDeflate, offer: "permessage-deflate; client_no_context_takeover; server_no_context_takeover", input: cat(zipped, bye), code: 1000, stdin: "zipped\n"},
		{name: "offer-declined-then-acceptable", use: withDeflate, offer: "permessage-deflate; server_max_window_bits=10, permessage-deflate", input: cat(zipped, bye), code: 1000, stdin: "zipped\n"},
		{name: "offer-server-max-window-bits", use: withDeflate, offer: "permessage-deflate; server_max_window_bits=8", declined: true, input: cat(ok, zipped), code: 1002, stdin: "ok\n"},
		{name: "offer-client-max-window-bits-junk", use: withDeflate, offer: "permessage-deflate; client_max_window_bits=junk", declined: true, input: cat(ok, zipped), code: 1002, stdin: "ok\n"},
		{name: "offer-unknown-parameter", use: withDeflate, offer: "permessage-deflate; mystery", declined: true, input: cat(ok, zipped), code: 1002, stdin: "ok\n"},
		{name: "offer-repeated-parameter", use: withDeflate, offer: "permessage-deflate; client_no_context_takeover; client_no_context_takeover", declined: true, input: cat(ok, zipped), code: 1002, stdin: "ok\n"},
		{name: "offer-malformed", use: withDeflate, offer: "permessage-deflate; =", declined: true, input: cat(ok, zipped), code: 1002, stdin: "ok\n"},
	}
}

// tableGateway is one gateway the table runs on: its mode, and where its
// children write what they read.
type tableGateway struct {
	name      string
	g         *gatewayProc
	broadcast bool
	deflate   bool
	dir       string
}

// startTableGateway starts a gateway whose child, per connection or per
// stream, writes its stdin to a file named after the query string.
func startTableGateway(t *testing.T, broadcast, deflate bool) *tableGateway {
	tg := &tableGateway{broadcast: broadcast, deflate: deflate, dir: t.TempDir()}
	args := []string{"--maxframesize=" + strconv.Itoa(tableMaxFrame)}
	tg.name = "per-connection"
	if broadcast {
		args = append(args, "--broadcast")
		tg.name = "broadcast"
	}
	if deflate {
		args = append(args, "--compress")
		tg.name += "+compress"
	}
	// Not exec: the shell keeps the stdout open, whose end would end the
	// session.
	args = append(args, writeScript(t, `cat > "`+tg.dir+`/$QUERY_STRING"`))
	tg.g = startGateway(t, args...)
	return tg
}

// runs reports whether the gateway runs case c.
func (tg *tableGateway) runs(c protocolCase) bool {
	return c.use == eitherWay || (c.use == withDeflate) == tg.deflate
}

// protocolOutcome is what a case got from one gateway.
type protocolOutcome struct {
	code  int
	stdin string
}

// run sends case c on a new connection and returns what came of it.
func (tg *tableGateway) run(t *testing.T, c protocolCase) protocolOutcome {
	t.Helper()
	g := tg.g
	offer := c.offer
	if offer == "" && tg.deflate {
		offer = "permessage-deflate"
	}
	var headers []string
	if offer != "" {
		headers = append(headers, "Sec-WebSocket-Extensions: "+offer)
	}
	conn, br, resp := rawHandshake(t, g.addr, upgradeRequest("/?"+c.name, g.addr, headers...))
	if resp.StatusCode != 101 {
		t.Fatalf("%s: handshake status %d", tg.name, resp.StatusCode)
	}
	accepted := resp.Header.Get("Sec-WebSocket-Extensions") != ""
	if want := tg.deflate && !c.declined; accepted != want {
		t.Errorf("%s: offer %q accepted: %v, want %v (answer %q)", tg.name, offer, accepted, want, resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	if _, err := conn.Write(c.input); err != nil {
		t.Fatalf("%s: write: %v", tg.name, err)
	}
	got, err := readServerClose(conn, br, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: no close frame: %v", tg.name, err)
	}
	serverFirst := got.closeCode() != 1000 && got.closeCode() != 4000 // else it answers the client's
	if serverFirst {
		_, _ = conn.Write(clientClose(closeWith(uint16(got.closeCode()), "")))
	}
	conn.Close()
	path := "/?" + c.name
	access := g.waitLog(10*time.Second, "session ended", func(f map[string]string) bool { return f["path"] == path })
	if serverFirst && access["close_code"] != strconv.Itoa(got.closeCode()) {
		t.Errorf("%s: access line says close %s %q; the client got %d %q", tg.name, access["close_code"], access["close_reason"], got.closeCode(), got.closeReason())
	}
	if tg.broadcast { // the shared child is stopped once its only member has left
		g.waitLog(10*time.Second, "shared process ended", func(f map[string]string) bool { return f["stream"] == path })
	}
	stdin, err := os.ReadFile(filepath.Join(tg.dir, c.name))
	if err != nil {
		t.Fatalf("%s: the child's stdin: %v", tg.name, err)
	}
	return protocolOutcome{code: got.closeCode(), stdin: string(stdin)}
}

func TestProtocolTable_EveryModeAnswersTheSameInputAlikeAndNothingOfARefusedMessageReachesStdin(t *testing.T) {
	t.Parallel()
	var gateways []*tableGateway
	for _, broadcast := range []bool{false, true} {
		for _, deflate := range []bool{false, true} {
			gateways = append(gateways, startTableGateway(t, broadcast, deflate))
		}
	}
	for _, c := range protocolCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu  sync.Mutex
				got = map[string]protocolOutcome{}
			)
			t.Run("modes", func(t *testing.T) { // returns once every mode has run
				for _, tg := range gateways {
					if !tg.runs(c) {
						continue
					}
					t.Run(tg.name, func(t *testing.T) {
						t.Parallel()
						out := tg.run(t, c)
						mu.Lock()
						got[tg.name] = out
						mu.Unlock()
					})
				}
			})
			for name, out := range got {
				if out.code != c.code || out.stdin != c.stdin {
					t.Errorf("%s: close %d, stdin %.60q; want close %d, stdin %.60q (every mode: %v)", name, out.code, out.stdin, c.code, c.stdin, got)
				}
			}
		})
	}
}

// Under TLS the client is read by the session's goroutine in both modes,
// with the same decoder: compressed messages arrive intact, and a message
// over --maxframesize or with invalid UTF-8 gets its close code.
func TestProtocol_UnderTLSBothModesDecodeAlike(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, mode := range []string{"per-connection", "broadcast"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			args := []string{"--ssl", "--sslcert=" + pki.serverCert, "--sslkey=" + pki.serverKey, "--compress", "--maxframesize=" + strconv.Itoa(tableMaxFrame)}
			if mode == "broadcast" {
				args = append(args, "--broadcast")
			}
			g := startGateway(t, append(args, "cat")...)
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: pki.caPool}, EnableCompression: true}
			for _, c := range []struct {
				name string
				bad  string
				code int
			}{
				{"over-maxframesize", strings.Repeat("x", tableMaxFrame+1), 1009},
				{"invalid-utf8", "bad \xff", 1007},
			} {
				conn, resp, err := d.Dial("wss://"+g.addr+"/?"+c.name, nil)
				if err != nil {
					t.Fatalf("%s: dial: %v", c.name, err)
				}
				resp.Body.Close()
				if resp.Header.Get("Sec-WebSocket-Extensions") == "" {
					t.Fatalf("%s: permessage-deflate not negotiated", c.name)
				}
				long := strings.Repeat("compressed over TLS ", 40) // under the limit, compressed
				send(t, conn, "short", long)
				if got := []string{receive(t, conn), receive(t, conn)}; got[0] != "short" || got[1] != long {
					t.Fatalf("%s: echoes %.40q", c.name, got)
				}
				send(t, conn, c.bad)
				expectClose(t, conn, c.code, closeReasons[c.code])
				conn.Close()
			}
		})
	}
}

// closeReasons are the reasons that go with the close codes the gateway
// refuses a message with.
var closeReasons = map[int]string{1007: "invalid UTF-8 in text message", 1009: "message too big"}
