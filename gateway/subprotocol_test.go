package gateway

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/httppolicy"
)

func TestNewSubprotocolsRefusesWhatIsNoToken(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "two words", "a,b", "quo\"te", "naïve"} {
		if _, err := httppolicy.NewSubprotocols([]string{"ok", bad}); err == nil {
			t.Errorf("NewSubprotocols accepted %q", bad)
		}
	}
	if _, err := httppolicy.NewSubprotocols([]string{"chat.v2", "mqtt", "graphql-transport-ws", "x~!#$%&'*+-.^_`|"}); err != nil {
		t.Errorf("NewSubprotocols refused tokens: %v", err)
	}
	_, err := New(Config{Command: []string{"cat"}, Subprotocols: []string{"two words"}, Logger: slogDiscard()})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Subprotocols" {
		t.Errorf("New with a bad subprotocol: %v, want a ConfigError naming Subprotocols", err)
	}
}

// The client's order decides among the listed protocols, and the child
// learns which was chosen.
func TestSubprotocolIsChosenAndNamedToTheChild(t *testing.T) {
	t.Parallel()
	const body = `printf '%s\n' "${WEBSOCKET_PROTOCOL-unset}"`
	cases := []struct {
		name     string
		served   []string
		offered  []string
		status   int    // of the handshake
		chosen   string // in the response and WEBSOCKET_PROTOCOL
		childEnv string
	}{
		{"clients-first-listed", []string{"chat.v2", "chat.v1"}, []string{"chat.v1", "chat.v2"}, 101, "chat.v1", "chat.v1"},
		{"unlisted-skipped", []string{"chat.v2", "chat.v1"}, []string{"other", "chat.v2"}, 101, "chat.v2", "chat.v2"},
		{"only-unlisted-refused", []string{"chat.v2"}, []string{"other", "chat.v3"}, 400, "", ""},
		{"none-offered-served", []string{"chat.v2"}, nil, 101, "", ""},
		{"not-served-ignores-offers", nil, []string{"chat.v1"}, 101, "", "unset"},
		{"not-served-none-offered", nil, nil, 101, "", "unset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := script(t, body)
			cfg.Subprotocols = c.served
			tg := newTestGateway(t, cfg)
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: c.offered}
			conn, resp, err := d.Dial(tg.url("/"), nil)
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("handshake status %d, want %d (%v)", resp.StatusCode, c.status, err)
			}
			if c.status != http.StatusSwitchingProtocols {
				if !strings.Contains(string(body), "chat.v2") {
					t.Errorf("refusal %q does not name the subprotocols served", body)
				}
				tg.waitForLog(t, "no subprotocol in common", time.Second)
				return
			}
			defer conn.Close()
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != c.chosen || conn.Subprotocol() != c.chosen {
				t.Errorf("Sec-WebSocket-Protocol %q, want %q", got, c.chosen)
			}
			msgs, ce := readUntilClose(t, conn, 5*time.Second)
			assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
			if want := []string{c.childEnv}; !reflect.DeepEqual(msgs, want) {
				t.Errorf("the child saw WEBSOCKET_PROTOCOL %q, want %q", msgs, want)
			}
		})
	}
}

// A shared process has its first client's environment, subprotocol included.
func TestBroadcastSharedProcessGetsTheFirstClientsSubprotocol(t *testing.T) {
	t.Parallel()
	cfg := broadcastScript(t, `printf '%s\n' "$WEBSOCKET_PROTOCOL"; exec cat >/dev/null`)
	cfg.Subprotocols = []string{"chat.v2", "chat.v1"}
	tg := newTestGateway(t, cfg)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"chat.v1"}}
	conn, resp, err := d.Dial(tg.url("/"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	defer conn.Close()
	if got := readMessageText(t, conn); got != "chat.v1" || conn.Subprotocol() != "chat.v1" {
		t.Errorf("the shared process saw WEBSOCKET_PROTOCOL %q, the client was answered %q; want chat.v1", got, conn.Subprotocol())
	}
}
