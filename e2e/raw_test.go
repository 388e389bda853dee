package e2e

// Raw clients: what a well-behaved library will not send (frames with lying
// lengths, malformed close frames, handshakes sent a byte at a time, Host
// headers of another name) is written byte for byte on a plain TCP
// connection, and what comes back is parsed the same way.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawConn opens a TCP connection to addr (at most 5 s), closed at the end of
// the test.
func rawConn(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// upgradeRequest is a WebSocket handshake for path with Host host and the
// extra header lines ("Name: value"). path is sent as it is, percent
// escapes included.
func upgradeRequest(path, host string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// rawUpgrade sends request on a new connection to addr and reads the
// response head (at most 5 s). It returns the connection, a reader of what
// follows the head, and the status code.
func rawUpgrade(t testing.TB, addr, request string) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	conn, br, resp := rawHandshake(t, addr, request)
	return conn, br, resp.StatusCode
}

// rawHandshake is rawUpgrade returning the whole response head.
func rawHandshake(t testing.TB, addr, request string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn := rawConn(t, addr)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("send handshake: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response to the handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, resp
}

// clientFrame is one masked client frame with the given first byte (FIN,
// RSV and opcode) and payload.
func clientFrame(first byte, payload []byte) []byte {
	key := [4]byte{0x1f, 0x2e, 0x3d, 0x4c}
	f := []byte{first}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = binary.BigEndian.AppendUint16(append(f, 0x80|126), uint16(n))
	default:
		f = binary.BigEndian.AppendUint64(append(f, 0x80|127), uint64(n))
	}
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// Client frame first bytes: FIN set, and the opcode.
const (
	finText  = 0x81
	finClose = 0x88
	finPing  = 0x89
)

// serverFrame is one frame the server sent.
type serverFrame struct {
	op      byte
	payload []byte
}

// closeCode returns a close frame's code, or 1005 when it carries none.
func (f serverFrame) closeCode() int {
	if len(f.payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// closeReason returns a close frame's reason.
func (f serverFrame) closeReason() string {
	if len(f.payload) < 2 {
		return ""
	}
	return string(f.payload[2:])
}

// readServerFrame reads one unmasked frame; payloads over 1 MiB are an
// error, not an allocation.
func readServerFrame(br *bufio.Reader) (serverFrame, error) {
	var head [2]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return serverFrame{}, err
	}
	n := uint64(head[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if head[1]&0x80 != 0 || n > 1<<20 {
		return serverFrame{}, fmt.Errorf("bad server frame header % x, length %d", head, n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return serverFrame{}, err
	}
	return serverFrame{op: head[0] & 0x0f, payload: payload}, nil
}

// readServerClose reads frames until a close frame (at most timeout), and
// returns it, or the error that came first (a bare TCP end: io.EOF or a
// reset).
func readServerClose(conn net.Conn, br *bufio.Reader, timeout time.Duration) (serverFrame, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		f, err := readServerFrame(br)
		if err != nil || f.op == 0x8 {
			return f, err
		}
	}
}
