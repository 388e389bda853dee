package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestOutputLinesBecomeTextMessages(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, `echo first; printf 'crlf\r\n'; echo; printf 'tab\there\n'; printf 'last line without newline'`))
	conn := tg.dial(t, "/", nil)
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	want := []string{"first", "crlf", "", "tab\there", "last line without newline"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") || len(msgs) != len(want) {
		t.Errorf("messages = %q, want %q", msgs, want)
	}
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
}

func TestClientMessagesBecomeLinesInOrder(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, command(t, "cat"))
	conn := tg.dial(t, "/", nil)
	send(t, conn, websocket.TextMessage, "one")
	send(t, conn, websocket.TextMessage, "two\nthree") // a newline inside makes two lines
	send(t, conn, websocket.TextMessage, "")
	big := strings.Repeat("0123456789", 20000) // larger than a pipe's buffer
	send(t, conn, websocket.TextMessage, big)
	for i := range 500 {
		send(t, conn, websocket.TextMessage, strings.Repeat("x", i))
	}
	want := []string{"one", "two", "three", "", big}
	for i := range 500 {
		want = append(want, strings.Repeat("x", i))
	}
	for i, w := range want {
		if got := readMessageText(t, conn); got != w {
			t.Fatalf("message %d = %.40q (%d bytes), want %.40q (%d bytes)", i, got, len(got), w, len(w))
		}
	}
}

func TestInvalidOutputUTF8IsReplaced(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, `printf 'a\377b\n'; printf '\342\202\n'; printf 'caf\303\251\n'`))
	conn := tg.dial(t, "/", nil)
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	want := []string{"a\uFFFDb", "\uFFFD\uFFFD", "café"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Errorf("messages = %q, want %q", msgs, want)
	}
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
	logs := tg.waitForLog(t, "session ended", 2*time.Second)
	if n := strings.Count(logs, "invalid UTF-8"); n != 1 {
		t.Errorf("invalid UTF-8 logged %d times, want once per connection:\n%s", n, logs)
	}
}

func TestInvalidClientUTF8Closes1007(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, command(t, "cat"))
	conn := tg.dial(t, "/", nil)
	send(t, conn, websocket.TextMessage, "fine")
	if got := readMessageText(t, conn); got != "fine" {
		t.Fatalf("echo = %q", got)
	}
	send(t, conn, websocket.TextMessage, "bad \xff byte")
	send(t, conn, websocket.TextMessage, "after")
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	if len(msgs) != 0 {
		t.Errorf("messages after the invalid one = %q, want none", msgs)
	}
	assertClose(t, ce, websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in text message")
}

func TestOversizedClientMessageCloses1009(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.MaxMessageSize = 1000
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	send(t, conn, websocket.TextMessage, strings.Repeat("a", 1000))
	if got := readMessageText(t, conn); len(got) != 1000 {
		t.Fatalf("message at the limit came back as %d bytes", len(got))
	}
	send(t, conn, websocket.TextMessage, strings.Repeat("a", 1001))
	_, ce := readUntilClose(t, conn, 5*time.Second)
	if ce == nil || ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("close = %v, want 1009", ce)
	}
}

func TestOversizedOutputLineCloses1009(t *testing.T) {
	t.Parallel()
	cfg := script(t, `head -c 1000 /dev/zero | tr '\0' a; echo; head -c 1001 /dev/zero | tr '\0' b; echo; echo never; exec sleep 30`)
	cfg.MaxLineSize = 1000
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	if len(msgs) != 1 || msgs[0] != strings.Repeat("a", 1000) {
		t.Errorf("got %d messages, want only the line at the limit", len(msgs))
	}
	assertClose(t, ce, websocket.CloseMessageTooBig, "output line too long")
	tg.waitForLog(t, "output line over the limit", 2*time.Second)
}

func TestOutputLongerThanBufferIsOneMessage(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, `head -c 300000 /dev/zero | tr '\0' z; echo; printf 'tail'`))
	conn := tg.dial(t, "/", nil)
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	if len(msgs) != 2 || msgs[0] != strings.Repeat("z", 300000) || msgs[1] != "tail" {
		t.Errorf("got %d messages, want a 300000-byte line then %q", len(msgs), "tail")
	}
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
}

func TestBinaryModeIsByteExact(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.Binary = true
	tg := newTestGateway(t, cfg)
	conn := tg.dial(t, "/", nil)
	var payload []byte
	for i := range 3000 {
		payload = append(payload, byte(i), 0, 0xff, '\n', '\r')
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, payload); err != nil {
		t.Fatal(err)
	}
	var got []byte
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(payload) {
		msgType, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		if msgType != websocket.BinaryMessage {
			t.Fatalf("message type %d, want binary", msgType)
		}
		got = append(got, data...)
	}
	if !bytes.Equal(got, payload) {
		t.Error("binary round trip changed the bytes")
	}
}

func TestLongStderrLineDoesNotStallTheChild(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, script(t, `head -c 1048576 /dev/zero | tr '\0' e >&2; echo >&2; echo done`))
	conn := tg.dial(t, "/", nil)
	msgs, ce := readUntilClose(t, conn, 5*time.Second)
	if strings.Join(msgs, "|") != "done" {
		t.Errorf("messages = %q, want done", msgs)
	}
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
	logs := tg.waitForLog(t, "session ended", 2*time.Second)
	if n := strings.Count(logs, "e"); n < 1<<20 {
		t.Errorf("log holds %d of the stderr line's 1048576 bytes", n)
	}
	if n := strings.Count(logs, "msg=stderr"); n != 16 {
		t.Errorf("the 1 MiB line was logged in %d records, want 16 pieces of 64 KiB", n)
	}
}

// maskedFrame is a client frame with a zero mask, so the payload is as is.
func maskedFrame(opcode byte, payload string) []byte {
	frame := []byte{0x80 | opcode, 0x80 | byte(len(payload)), 0, 0, 0, 0}
	return append(frame, payload...)
}

func TestMessagesBeforeTheClientsEndReachStdin(t *testing.T) {
	t.Parallel()
	// Every message that arrived whole reaches the child, even when it came
	// in one TCP segment with the client's end: a close frame, a frame cut
	// off by a drop, or a message that is closed with 1007.
	messages := string(maskedFrame(websocket.TextMessage, "one")) + string(maskedFrame(websocket.TextMessage, "two")) +
		string(maskedFrame(websocket.TextMessage, "three"))
	ends := map[string]string{
		"close frame":   string(maskedFrame(websocket.CloseMessage, "\x03\xe8")),
		"cut-off frame": string(maskedFrame(websocket.TextMessage, "four"))[:5],
		"nothing more":  "",
		"invalid text":  string(maskedFrame(websocket.TextMessage, "four\xff")),
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "stdin")
			cfg := script(t, `cat > `+out)
			// cat gets the stop sequence's first 100 ms, and 2 s more, to
			// write what it read: a loaded machine may not run it sooner.
			cfg.CloseGrace = 2 * time.Second
			tg := newTestGateway(t, cfg)
			conn := tg.dial(t, "/", nil)
			if _, err := conn.UnderlyingConn().Write([]byte(messages + end)); err != nil {
				t.Fatal(err)
			}
			conn.UnderlyingConn().Close()
			tg.waitForLog(t, "session ended", 5*time.Second)
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "one\ntwo\nthree\n" {
				t.Errorf("stdin got %q, want the three messages", got)
			}
		})
	}
}

func TestMessageFollowedByAControlFrameOrFragmentIsNotHeldBack(t *testing.T) {
	t.Parallel()
	// A whole message followed, in the same segment, by something that does
	// not complete a message must reach the child at once, not wait for the
	// client's next message.
	first := maskedFrame(websocket.TextMessage, "first")
	fragment := []byte{0x01, 0x80 | 4, 0, 0, 0, 0, 'p', 'a', 'r', 't'} // FIN clear
	followers := map[string][]byte{
		"ping":           maskedFrame(websocket.PingMessage, "p"),
		"first fragment": fragment,
	}
	for name, follower := range followers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := newTestGateway(t, command(t, "cat"))
			conn := tg.dial(t, "/", nil)
			if _, err := conn.UnderlyingConn().Write(append(append([]byte{}, first...), follower...)); err != nil {
				t.Fatal(err)
			}
			// The echo comes at once; a second is far beyond it and far
			// short of the ping interval that would otherwise unblock it.
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			_, data, err := conn.ReadMessage()
			if err != nil || string(data) != "first" {
				t.Fatalf("echo = %q, %v: the message was held back", data, err)
			}
		})
	}
}
