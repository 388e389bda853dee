package gateway

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/auth"
	"golang.org/x/crypto/bcrypt"
)

// basicAuth returns Basic checking an htpasswd file of user and password.
func basicAuth(t *testing.T, user, password string) *auth.Basic {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := auth.LoadBasic(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func basicHeader(user, password string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}}
}

// envScript prints the variables named, one "NAME=value" line each, then
// every variable whose value holds "SECRET", so that a credential that
// reaches the child shows.
const envScript = `for v in AUTH_TYPE REMOTE_USER QUERY_STRING REQUEST_URI HTTP_COOKIE HTTP_AUTHORIZATION; do
  eval "echo $v=\${$v-unset}"
done
env | grep SECRET | sed 's/^/leak:/'
echo end`

func TestIdentity_TheChildGetsWhoNotTheCredential(t *testing.T) {
	t.Parallel()
	cfg := script(t, envScript)
	cfg.Auth = auth.Methods{Basic: basicAuth(t, "alice", "SECRETpw"), Tokens: &auth.Tokens{}, TokenCookie: "jwt"}
	tg := newTestGateway(t, cfg)
	header := basicHeader("alice", "SECRETpw")
	header.Set("Cookie", "theme=dark; jwt=SECRETjwt")
	conn := tg.dial(t, "/?a=1&access_token=SECRETtoken&b=2", header)
	msgs, ce := readUntilClose(t, conn, 10*time.Second)
	assertClose(t, ce, websocket.CloseNormalClosure, "exit status 0")
	want := []string{"AUTH_TYPE=Basic", "REMOTE_USER=alice", "QUERY_STRING=a=1&b=2", "REQUEST_URI=/?a=1&b=2",
		"HTTP_COOKIE=theme=dark", "HTTP_AUTHORIZATION=unset", "end"}
	if !slices.Equal(msgs, want) {
		t.Fatalf("the child saw\n%q\nwant\n%q", msgs, want)
	}
	access := tg.waitForLog(t, "session ended", 5*time.Second)
	if !strings.Contains(access, "user=alice") || strings.Contains(access, "SECRET") {
		t.Fatalf("the access log must name the user and never the credential:\n%s", access)
	}
}

func TestIdentity_RefusedHandshakesAndPlainRequestsGet401WithTheRealm(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.DevConsole = true
	cfg.Auth = auth.Methods{Basic: basicAuth(t, "alice", "pw")}
	tg := newTestGateway(t, cfg)
	for _, header := range []http.Header{nil, basicHeader("alice", "wrong"), {"Authorization": {"Basic %%%"}}} {
		_, resp, err := websocket.DefaultDialer.Dial(tg.url("/"), header)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("handshake with %v: %v %v, want 401", header, err, resp)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="wsgate", charset="UTF-8"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
	}
	resp, err := http.Get(tg.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the console without credentials: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, tg.srv.URL+"/", nil)
	req.SetBasicAuth("alice", "pw")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the console with credentials: %d, want 200", resp.StatusCode)
	}
	logs := tg.logs.String()
	if n := strings.Count(logs, "level=WARN msg=\"handshake refused: wrong user or password\""); n != 1 {
		t.Errorf("%d WARN lines for the one wrong password, want 1:\n%s", n, logs)
	}
}

func TestPerAddress_ASlotIsGivenBackExactlyOnce(t *testing.T) {
	t.Parallel()
	cfg := command(t, "cat")
	cfg.MaxConnsPerAddr = 2
	tg := newTestGateway(t, cfg)
	first := tg.dial(t, "/", nil)
	second := tg.dial(t, "/", nil)
	_, ce := readUntilClose(t, tg.dial(t, "/", nil), 5*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "too many connections from your address")
	for _, c := range []*websocket.Conn{first, second} {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		readUntilClose(t, c, 5*time.Second)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tg.gw.capacity.PerAddress.Addresses() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the address still holds %d slots after its connections ended", tg.gw.capacity.PerAddress.Addresses())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Both slots are free again, and no more than both.
	for range 2 {
		c := tg.dial(t, "/", nil)
		send(t, c, websocket.TextMessage, "hi")
		if got := readMessageText(t, c); got != "hi" {
			t.Fatalf("echo %q", got)
		}
	}
	_, ce = readUntilClose(t, tg.dial(t, "/", nil), 5*time.Second)
	assertClose(t, ce, websocket.CloseTryAgainLater, "too many connections from your address")
}

func TestRateLimit_RefusesWith429AndRetryAfterBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "started")
	cfg := script(t, "echo x >> "+marker+"; exec cat")
	cfg.RateLimit = 2
	tg := newTestGateway(t, cfg)
	for range 2 {
		c := tg.dial(t, "/", nil)
		send(t, c, websocket.TextMessage, "started?")
		readMessageText(t, c) // the child runs: it has written the marker
	}
	_, resp, err := websocket.DefaultDialer.Dial(tg.url("/"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third handshake: %v %v, want 429", err, resp)
	}
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1 (a token every half second)", got)
	}
	data, _ := os.ReadFile(marker)
	if n := strings.Count(string(data), "x"); n != 2 {
		t.Errorf("%d children started for 2 admitted handshakes", n)
	}
}
