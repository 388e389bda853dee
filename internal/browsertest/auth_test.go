package browsertest

// Who may connect, in a real browser: a page behind --basicauth, whose
// WebSocket gets in with the credentials the browser logged in with, and a
// page that hands its token to its WebSocket as ?access_token=, since a
// browser cannot set a header on a WebSocket handshake.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/wsgate/wsgate/internal/testrun"
	"golang.org/x/crypto/bcrypt"
)

// whoPage is a page that opens a WebSocket to its own server, passing on
// its own query string, and shows the first message it gets, or the close
// code of a socket that could not open.
const whoPage = `<!doctype html>
<meta charset="utf-8">
<title>who</title>
<pre id="out">connecting</pre>
<script>
const out = document.querySelector('#out');
const ws = new WebSocket('ws://' + location.host + '/' + location.search);
ws.onmessage = e => { out.textContent = e.data; out.dataset.state = 'got'; };
ws.onclose = e => { if (out.dataset.state !== 'got') { out.textContent = 'closed ' + e.code; out.dataset.state = 'closed'; } };
</script>
`

// whoScript says who the gateway says its client is, then echoes.
const whoScript = `echo "user=$REMOTE_USER type=$AUTH_TYPE query=$QUERY_STRING auth=${HTTP_AUTHORIZATION:-none}"; exec cat`

// whoSite writes the page and the script to a directory and returns the
// directory and the script's path.
func whoSite(t *testing.T) (dir, program string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(whoPage), 0o644); err != nil {
		t.Fatal(err)
	}
	program = filepath.Join(t.TempDir(), "who.sh")
	if err := os.WriteFile(program, []byte("#!/bin/sh\n"+whoScript+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, program
}

// htpasswdFile writes an htpasswd file of one bcrypt entry.
func htpasswdFile(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBasicAuthPageOpensItsWebSocketAsItsUser(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	site, program := whoSite(t)
	g := startExample(t, "--basicauth="+htpasswdFile(t, "alice", "s3cret"), "--staticdir="+site, program)
	b := launchBrowser(t, ctx)
	p := openExamplePage(t, ctx, b, "http://alice:s3cret@"+g.addr+"/", "light")
	waitForPage(t, ctx, p, "the first message", `document.querySelector('#out').dataset.state`)
	var got string
	evaluate(t, ctx, p, "document.querySelector('#out').textContent", &got)
	if want := "user=alice type=Basic query= auth=none"; got != want {
		t.Fatalf("the program saw %q, want %q", got, want)
	}
}

func TestTokenPagePassesItsAccessTokenToItsWebSocket(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	site, program := whoSite(t)
	secret := []byte("a secret of thirty-two bytes or more, for HS256")
	keyFile := filepath.Join(t.TempDir(), "jwt.key")
	if err := os.WriteFile(keyFile, append(append([]byte{}, secret...), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	token := testrun.SignToken(t, jose.HS256, secret, "", jwt.Claims{Subject: "dora", Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	g := startExample(t, "--jwtkey="+keyFile, "--staticdir="+site, program)
	b := launchBrowser(t, ctx)

	p := openExamplePage(t, ctx, b, "http://"+g.addr+"/?room=1&access_token="+token+"&lang=en", "light")
	waitForPage(t, ctx, p, "the first message", `document.querySelector('#out').dataset.state`)
	var got string
	evaluate(t, ctx, p, "document.querySelector('#out').textContent", &got)
	if want := "user=dora type=Bearer query=room=1&lang=en auth=none"; got != want {
		t.Fatalf("the program saw %q, want %q", got, want)
	}

	// Without the token the page itself is refused.
	bare := openExamplePage(t, ctx, b, "http://"+g.addr+"/?room=1", "light")
	var status string
	evaluate(t, ctx, bare, "document.body.innerText", &status)
	if !strings.Contains(status, "authentication required") {
		t.Fatalf("the page without a token shows %q, want the 401's text", status)
	}
}

// The dashboard example behind --basicauth, as the README shows: the
// browser logs in to the page, and its WebSocket gets in with the same
// credentials; a request without them gets 401.
func TestDashboardExampleBehindBasicAuth(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := examplePath(t, "dashboard")
	g := startExample(t, "--broadcast", "--replay=60", "--basicauth="+htpasswdFile(t, "ops", "watch"),
		"--staticdir="+dir, filepath.Join(dir, "stats.sh"))
	b := launchBrowser(t, ctx)
	p := openExamplePage(t, ctx, b, "http://ops:watch@"+g.addr+"/", "dark")
	waitForPage(t, ctx, p, "the live state", isState("live"))
	waitForPage(t, ctx, p, "two points on every chart", allCharts(">= 2"))

	// A request without the credentials the browser logged in with is
	// refused.
	var status int
	evaluate(t, ctx, p, "fetch('http://' + location.host + '/?probe', {credentials: 'omit', cache: 'no-store'}).then(r => r.status)", &status)
	if status != 401 {
		t.Fatalf("the page fetched without credentials: %d, want 401", status)
	}
}
