package e2e

// Who may connect, end to end: the real binary, real clients (gorilla and
// python3-websockets), htpasswd files written by Debian's htpasswd -B, keys
// made by openssl, nginx's auth_request in front, and the --authcmd
// example. Each method is checked for what gets in, what is refused and
// how, what the program sees (never the credential), and what is logged
// and counted.

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// envDump prints the child's whole environment, then "end-of-env", and
// exits: what the program was told of its client.
const envDump = `env; echo end-of-env`

// childEnv parses the lines envDump printed.
func childEnv(t *testing.T, lines []string) map[string]string {
	t.Helper()
	if len(lines) == 0 || lines[len(lines)-1] != "end-of-env" {
		t.Fatalf("the child's environment did not arrive whole: %q", lines)
	}
	env := map[string]string{}
	for _, line := range lines[:len(lines)-1] {
		name, value, _ := strings.Cut(line, "=")
		env[name] = value
	}
	return env
}

// expectIdentity checks what the program was told: its AUTH_TYPE and
// REMOTE_USER, the variables in more, and that none of its variables holds
// any of the secrets.
func expectIdentity(t *testing.T, env map[string]string, authType, user string, more map[string]string, secrets ...string) {
	t.Helper()
	want := map[string]string{"AUTH_TYPE": authType, "REMOTE_USER": user}
	for k, v := range more {
		want[k] = v
	}
	for name, value := range want {
		if got, ok := env[name]; value == "unset" && ok || value != "unset" && got != value {
			t.Errorf("the program's %s is %q (set %v), want %q", name, got, ok, value)
		}
	}
	for name, value := range env {
		for _, secret := range secrets {
			if strings.Contains(value, secret) {
				t.Errorf("the program's %s holds the credential", name)
			}
		}
	}
}

// dialWith opens a WebSocket with the handshake's headers and returns the
// response of a refused one.
func dialWith(t *testing.T, url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, header)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// envOf dials url with header and returns the environment the child
// printed.
func envOf(t *testing.T, url string, header http.Header) map[string]string {
	t.Helper()
	conn, resp, err := dialWith(t, url, header)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	msgs, ce, err := readUntilClose(conn, 5*time.Second)
	if err != nil || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("the child's close: %v %v", ce, err)
	}
	return childEnv(t, msgs)
}

// expectStatus dials url with header and checks the handshake is refused
// with status, and, when challenge is not "", that the answer's
// WWW-Authenticate holds it.
func expectStatus(t *testing.T, url string, header http.Header, status int, challenge string) *http.Response {
	t.Helper()
	_, resp, err := dialWith(t, url, header)
	if err == nil || resp == nil || resp.StatusCode != status {
		t.Fatalf("%s with %v: %v (%v), want %d", url, header, err, resp, status)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Www-Authenticate"); challenge != "" && !slices.Contains(got, challenge) {
		t.Errorf("%s: WWW-Authenticate %q, want %q among them", url, got, challenge)
	}
	return resp
}

// htpasswdB adds user to the htpasswd file at path with Debian's
// htpasswd -B (creating the file), with any further flags.
func htpasswdB(t *testing.T, path, user, password string, flags ...string) {
	t.Helper()
	bin := requireTool(t, "htpasswd")
	args := append([]string{"-B", "-b"}, flags...)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		args = append(args, "-c")
	}
	if out, err := exec.Command(bin, append(args, path, user, password)...).CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v: %s", err, out)
	}
}

func basic(user, password string) http.Header {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, password)
	return http.Header{"Authorization": r.Header.Values("Authorization")}
}

const basicChallenge = `Basic realm="wsgate", charset="UTF-8"`

// A password file written by htpasswd -B guards the handshakes, the CGI
// scripts and the static files alike; the program and the scripts learn who
// the client is, never the password; each refusal is counted once as auth
// and logged once at WARN, saying what to change and not the password.
func TestBasicAuth_HtpasswdFileGuardsHandshakesAndPlainHTTP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	htpasswdB(t, users, "alice", "SECRETpw")
	htpasswdB(t, users, "bob", "SECRETbob", "-C", "6") // a cost of its own; 10 takes seconds under the race detector
	static, cgi := filepath.Join(dir, "static"), filepath.Join(dir, "cgi")
	for _, d := range []string{static, cgi} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(static, "page.txt"), "the page\n")
	cgiScript := "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"$AUTH_TYPE $REMOTE_USER ${HTTP_AUTHORIZATION:-none}\"\n"
	if err := os.WriteFile(filepath.Join(cgi, "who.cgi"), []byte(cgiScript), 0o755); err != nil {
		t.Fatal(err)
	}
	metrics := freeAddr(t)
	g := startGateway(t, "--basicauth="+users, "--metrics="+metrics, "--staticdir="+static, "--cgidir="+cgi, writeScript(t, envDump))

	// Handshakes: gorilla.
	expectStatus(t, g.url("/"), nil, http.StatusUnauthorized, basicChallenge)
	expectStatus(t, g.url("/"), basic("alice", "wrong"), http.StatusUnauthorized, basicChallenge)
	expectStatus(t, g.url("/"), basic("mallory", "SECRETpw"), http.StatusUnauthorized, basicChallenge)
	expectStatus(t, g.url("/"), http.Header{"Authorization": {"Basic not-base64!"}}, http.StatusUnauthorized, basicChallenge)
	expectIdentity(t, envOf(t, g.url("/?x=1"), basic("alice", "SECRETpw")), "Basic", "alice",
		map[string]string{"HTTP_AUTHORIZATION": "unset", "QUERY_STRING": "x=1"}, "SECRETpw")
	expectIdentity(t, envOf(t, g.url("/"), basic("bob", "SECRETbob")), "Basic", "bob", nil, "SECRETbob")

	// Handshakes: python3-websockets, credentials in the URL.
	_, port, _ := net.SplitHostPort(g.addr)
	got := runPythonSession(t, "ws://alice:SECRETpw@127.0.0.1:"+port+"/")
	expectIdentity(t, childEnv(t, got.Received), "Basic", "alice", nil, "SECRETpw")
	refused := runPythonSession(t, "ws://alice:nope@127.0.0.1:"+port+"/")
	if refused.Status != http.StatusUnauthorized || refused.Headers["Www-Authenticate"] != basicChallenge {
		t.Errorf("python with a wrong password: %+v, want 401 and the challenge", refused)
	}

	// Plain HTTP: static files and CGI scripts.
	plain := func(path string, header http.Header) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.addr+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := plain("/page.txt", nil); code != http.StatusUnauthorized {
		t.Errorf("a static file without credentials: %d, want 401", code)
	}
	if code, body := plain("/page.txt", basic("alice", "SECRETpw")); code != http.StatusOK || body != "the page\n" {
		t.Errorf("a static file with credentials: %d %q", code, body)
	}
	if code, body := plain("/who.cgi", basic("bob", "SECRETbob")); code != http.StatusOK || body != "Basic bob none\n" {
		t.Errorf("a CGI script with credentials: %d %q, want it told AUTH_TYPE and REMOTE_USER, not the credential", code, body)
	}

	// Counted once each (5 handshakes: 4 gorilla, 1 python), logged once
	// each at WARN; the plain refusal is logged, not counted.
	waitMetric(t, metrics, 5, "wsgate_handshakes_refused_total", "reason=auth")
	logs := g.logs()
	if strings.Contains(logs, "SECRET") || strings.Contains(logs, "nope") {
		t.Errorf("the log holds a password:\n%s", logs)
	}
	warns := logLines(logs, "handshake refused: wrong user or password")
	if len(warns) != 3 {
		t.Errorf("%d WARN lines for 3 wrong passwords:\n%s", len(warns), logs)
	}
	for _, f := range warns {
		if f["level"] != "WARN" || !strings.Contains(f["hint"], "alice") && !strings.Contains(f["hint"], "htpasswd -B") {
			t.Errorf("refusal logged as %v: want WARN naming the user or how to add one", f)
		}
	}
	if lines := logLines(logs, "request refused: authentication required"); len(lines) != 1 {
		t.Errorf("the plain refusal logged %d times", len(lines))
	}
	g.waitLog(5*time.Second, "session ended", func(f map[string]string) bool { return f["user"] == "bob" })
}

// SIGHUP reads the file again: a credential the new file no longer vouches
// for is refused at once, even one remembered a moment ago; new users get
// in; connections made before stay. A file that cannot be used leaves the
// users as they were.
func TestBasicAuth_HangupReloadsTheFileAndForgetsWhatItNoLongerVouchesFor(t *testing.T) {
	t.Parallel()
	users := filepath.Join(t.TempDir(), "users")
	htpasswdB(t, users, "alice", "old-pw")
	htpasswdB(t, users, "carol", "carol-pw")
	g := startGateway(t, "--basicauth="+users, "cat")
	held, _, err := dialWith(t, g.url("/"), basic("alice", "old-pw")) // remembered now
	if err != nil {
		t.Fatal(err)
	}

	htpasswdB(t, users, "alice", "new-pw")
	htpasswdB(t, users, "dave", "dave-pw")
	if out, err := exec.Command(requireTool(t, "htpasswd"), "-D", users, "carol").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd -D: %v %s", err, out)
	}
	g.stop(syscall.SIGHUP)
	g.waitLog(5*time.Second, "--basicauth reloaded: credentials the file no longer vouches for are refused", func(f map[string]string) bool { return f["users"] == "2" })
	expectStatus(t, g.url("/"), basic("alice", "old-pw"), http.StatusUnauthorized, basicChallenge)
	expectStatus(t, g.url("/"), basic("carol", "carol-pw"), http.StatusUnauthorized, basicChallenge)
	for _, h := range []http.Header{basic("alice", "new-pw"), basic("dave", "dave-pw")} {
		if _, resp, err := dialWith(t, g.url("/"), h); err != nil {
			t.Errorf("after the reload %v: %v (%v)", h, err, resp)
		}
	}
	send(t, held, "still here")
	if got := receive(t, held); got != "still here" {
		t.Errorf("the connection made before the reload echoes %q", got)
	}

	writeFile(t, users, "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n")
	g.stop(syscall.SIGHUP)
	f := g.waitLog(5*time.Second, "--basicauth not reloaded; the users loaded before still get in", nil)
	if f["level"] != "ERROR" || !strings.Contains(f["err"], "line 1") || !strings.Contains(f["err"], "htpasswd -B") {
		t.Errorf("the failed reload logged as %v", f)
	}
	if _, resp, err := dialWith(t, g.url("/"), basic("dave", "dave-pw")); err != nil {
		t.Errorf("after a failed reload dave is refused: %v (%v)", err, resp)
	}
}

// A file with an entry that is not bcrypt stops wsgate at start-up, naming
// the flag, the file, the line and the fix.
func TestBasicAuth_AnEntryThatIsNotBcryptIsAStartupError(t *testing.T) {
	t.Parallel()
	users := filepath.Join(t.TempDir(), "users")
	htpasswdB(t, users, "alice", "pw")
	if out, err := exec.Command(requireTool(t, "htpasswd"), "-b", "-m", users, "bob", "pw").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd -m: %v %s", err, out)
	}
	_, stderr, code := runCLI(t, nil, "--basicauth="+users, "cat")
	want := "--basicauth: " + users + `: line 2: user "bob": an MD5 hash ($apr1$), not bcrypt: write the entry with htpasswd -B`
	if code != exitBadUsage || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, exitBadUsage, want)
	}
}

// opensslKey makes a key pair with openssl genpkey args and returns the
// private key, parsed, and the path of the public key's PEM.
func opensslKey(t *testing.T, name string, args ...string) (crypto.Signer, string) {
	t.Helper()
	openssl := requireTool(t, "openssl")
	dir := t.TempDir()
	private, public := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	for _, cmd := range [][]string{
		append([]string{"genpkey"}, append(args, "-out", private)...),
		{"pkey", "-in", private, "-pubout", "-out", public},
	} {
		if out, err := exec.Command(openssl, cmd...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %q: %v %s", cmd, err, out)
		}
	}
	data, err := os.ReadFile(private)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM", private)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key.(crypto.Signer), public
}

// opensslSecret makes an HMAC secret with openssl rand and returns it (the
// file less its final newline) and the file's path.
func opensslSecret(t *testing.T) ([]byte, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwt.secret")
	if out, err := exec.Command(requireTool(t, "openssl"), "rand", "-base64", "-out", path, "48").CombinedOutput(); err != nil {
		t.Fatalf("openssl rand: %v %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSuffix(string(data), "\n")), path
}

// signToken signs claims with key in alg, naming kid if not "".
func signToken(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	return testrun.SignToken(t, alg, key, kid, claims)
}

// noneToken is an unsigned token: "alg": "none".
func noneToken(claims any) string {
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(claims)
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
}

// claimsFor are the claims of a token for sub, for wsgate, valid an hour.
func claimsFor(sub string) jwt.Claims {
	now := time.Now()
	return jwt.Claims{Subject: sub, Audience: jwt.Audience{"wsgate"}, Issuer: "https://id.example",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
}

const bearerInvalid = `Bearer realm="wsgate", error="invalid_token"`

// Tokens signed with HS256, RS256 and ES256 by keys openssl made get in,
// from the Authorization header (gorilla), the access_token parameter
// (python3-websockets) and the cookie; the program sees the token's sub and
// none of the three. Expired, not yet valid, wrong audience, alg none, and
// HS256 signed with the RS256 public key's PEM all get 401.
func TestJWT_TokensFromOpensslKeysAndEveryWayOfBeingWrong(t *testing.T) {
	t.Parallel()
	secret, secretFile := opensslSecret(t)
	rsaKey, rsaPub := opensslKey(t, "rsa", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
	ecKey, ecPub := opensslKey(t, "ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
	rsaPEM, err := os.ReadFile(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		name    string
		keyFile string
		alg     jose.SignatureAlgorithm
		key     any
	}{
		{"HS256", secretFile, jose.HS256, secret},
		{"RS256", rsaPub, jose.RS256, rsaKey},
		{"ES256", ecPub, jose.ES256, ecKey},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "--jwtkey="+k.keyFile, "--jwtaudience=wsgate", "--jwtissuer=https://id.example",
				"--jwtcookie=jwt", writeScript(t, envDump))
			token := signToken(t, k.alg, k.key, "", claimsFor("dora"))
			more := map[string]string{"HTTP_AUTHORIZATION": "unset", "QUERY_STRING": "room=1&lang=en", "REQUEST_URI": "/?room=1&lang=en"}
			expectIdentity(t, envOf(t, g.url("/?room=1&lang=en"), http.Header{"Authorization": {"Bearer " + token}}), "Bearer", "dora", more, token)
			fromCookie := envOf(t, g.url("/"), http.Header{"Cookie": {"theme=dark; jwt=" + token}})
			expectIdentity(t, fromCookie, "Bearer", "dora", map[string]string{"HTTP_COOKIE": "theme=dark"}, token)
			got := runPythonSession(t, g.url("/?room=1&access_token="+token+"&lang=en"))
			expectIdentity(t, childEnv(t, got.Received), "Bearer", "dora", more, token)

			now := time.Now()
			wrong := map[string]string{
				"expired":       signToken(t, k.alg, k.key, "", withClaims(claimsFor("x"), func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) })),
				"not-yet-valid": signToken(t, k.alg, k.key, "", withClaims(claimsFor("x"), func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) })),
				"wrong-aud":     signToken(t, k.alg, k.key, "", withClaims(claimsFor("x"), func(c *jwt.Claims) { c.Audience = jwt.Audience{"another-app"} })),
				"wrong-iss":     signToken(t, k.alg, k.key, "", withClaims(claimsFor("x"), func(c *jwt.Claims) { c.Issuer = "https://evil.example" })),
				"alg-none":      noneToken(claimsFor("x")),
				"hs256-rsa-pem": signToken(t, jose.HS256, rsaPEM, "", claimsFor("x")),
				"garbage":       "a.b.c",
			}
			for name, bad := range wrong {
				expectStatus(t, g.url("/"), http.Header{"Authorization": {"Bearer " + bad}}, http.StatusUnauthorized, bearerInvalid)
				if r := runPythonSession(t, g.url("/?access_token="+bad)); r.Status != http.StatusUnauthorized {
					t.Errorf("%s in the parameter, python: %+v, want 401", name, r)
				}
			}
			expectStatus(t, g.url("/"), nil, http.StatusUnauthorized, `Bearer realm="wsgate"`)
			if logs := g.logs(); strings.Contains(logs, token) || strings.Contains(logs, wrong["expired"]) {
				t.Error("the log holds a token")
			}
			for _, reason := range []string{"token expired", "token not yet valid", "token is for another audience", "token is from another issuer"} {
				g.waitLog(5*time.Second, "handshake refused: invalid token", func(f map[string]string) bool {
					return f["level"] == "WARN" && strings.Contains(f["hint"], reason)
				})
			}
		})
	}
}

func withClaims(c jwt.Claims, edit func(*jwt.Claims)) jwt.Claims {
	edit(&c)
	return c
}

// A JWKS document names several keys; each token is checked with the one
// its kid names.
func TestJWT_AJWKSKeyIsChosenByKid(t *testing.T) {
	t.Parallel()
	rsaKey, _ := opensslKey(t, "rsa", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
	ecKey, _ := opensslKey(t, "ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rsaKey.Public(), KeyID: "rsa-2026", Algorithm: "RS256", Use: "sig"},
		{Key: ecKey.Public(), KeyID: "ec-2026", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, jwks, string(doc))
	g := startGateway(t, "--jwtkey="+jwks, writeScript(t, envDump))
	for _, tok := range []string{
		signToken(t, jose.RS256, rsaKey, "rsa-2026", claimsFor("rsa-user")),
		signToken(t, jose.ES256, ecKey, "ec-2026", claimsFor("ec-user")),
	} {
		env := envOf(t, g.url("/"), http.Header{"Authorization": {"Bearer " + tok}})
		if env["AUTH_TYPE"] != "Bearer" || !strings.HasSuffix(env["REMOTE_USER"], "-user") {
			t.Errorf("a JWKS token: %q %q", env["AUTH_TYPE"], env["REMOTE_USER"])
		}
	}
	for _, bad := range []string{
		signToken(t, jose.RS256, rsaKey, "ec-2026", claimsFor("x")),
		signToken(t, jose.RS256, rsaKey, "", claimsFor("x")),
		signToken(t, jose.RS256, rsaKey, "rsa-2025", claimsFor("x")),
	} {
		expectStatus(t, g.url("/"), http.Header{"Authorization": {"Bearer " + bad}}, http.StatusUnauthorized, bearerInvalid)
	}
}

// A session ends with 1008 "token expired" when its token does, at exp
// and not before, for gorilla and python3-websockets alike.
func TestJWT_ASessionEndsWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	secret, keyFile := opensslSecret(t)
	g := startGateway(t, "--jwtkey="+keyFile, writeScript(t, "echo hello; exec cat"))
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second)
	claims := jwt.Claims{Subject: "dora", Expiry: jwt.NewNumericDate(exp)}
	token := signToken(t, jose.HS256, secret, "", claims)

	conn, resp, err := dialWith(t, g.url("/"), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	got := runPythonSession(t, g.url("/?access_token="+token))
	if got.CloseCode != websocket.ClosePolicyViolation || got.CloseReason != "token expired" || !slices.Equal(got.Received, []string{"hello"}) {
		t.Errorf("python saw %+v, want hello then 1008 token expired", got)
	}
	msgs := expectClose(t, conn, websocket.ClosePolicyViolation, "token expired")
	if now := time.Now(); now.Before(exp) {
		t.Errorf("closed %v before the token's exp", exp.Sub(now))
	}
	if !slices.Equal(msgs, []string{"hello"}) {
		t.Errorf("gorilla got %q before the close", msgs)
	}
	g.waitLog(5*time.Second, "session ended", func(f map[string]string) bool {
		return f["user"] == "dora" && f["close_code"] == "1008" && f["close_reason"] == "token expired"
	})
}

// authService is the service nginx's auth_request asks: a request with the
// cookie session=carol-ok is carol's; any other is refused.
func authService(t *testing.T) (addr string, asked *atomic.Int64) {
	t.Helper()
	asked = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if c, err := r.Cookie("session"); err == nil && c.Value == "carol-ok" && r.URL.Path == "/oauth2/auth" {
			w.Header().Set("X-Auth-Request-User", "carol")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), asked
}

// Real nginx with auth_request in front, configured by
// examples/nginx/wsgate-auth.conf: the user its service names reaches the
// program as REMOTE_USER with AUTH_TYPE Proxy; nginx refuses the others; a
// client that sends the header to wsgate itself, from an address that is
// not a --trustedproxy, gets 401.
func TestUserHeader_NginxAuthRequestInFront(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	service, asked := authService(t)
	g := startGateway(t, "--trustedproxy=127.0.0.1", "--userheader=X-Auth-Request-User", writeScript(t, envDump))
	p := startNginxExample(t, pki, "nginx/wsgate-auth.conf", g.addr, "server 127.0.0.1:4180;", "server "+service+";")

	conn, resp, err := p.dialWith(t, pki, "/?room=1", http.Header{"Cookie": {"session=carol-ok"}, "X-Auth-Request-User": {"mallory"}})
	if err != nil {
		t.Fatalf("through nginx with a session: %v (%v)", err, resp)
	}
	msgs, ce, err := readUntilClose(conn, 5*time.Second)
	if err != nil || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("close %v %v", ce, err)
	}
	expectIdentity(t, childEnv(t, msgs), "Proxy", "carol",
		map[string]string{"HTTP_X_AUTH_REQUEST_USER": "unset", "REMOTE_ADDR": clientIP, "QUERY_STRING": "room=1"})

	if _, resp, err := p.dialWith(t, pki, "/", http.Header{"X-Auth-Request-User": {"mallory"}}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("through nginx without a session: %v (%v), want nginx's 401", err, resp)
	}
	if asked.Load() < 2 {
		t.Errorf("the auth service was asked %d times, want once per handshake", asked.Load())
	}

	// Straight to wsgate from another address, the header is not believed.
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}).DialContext}
	_, direct, err := d.Dial(g.url("/"), http.Header{"X-Auth-Request-User": {"mallory"}})
	if err == nil || direct == nil || direct.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the header straight from %s: %v (%v), want 401", clientIP, err, direct)
	}
	g.waitLog(5*time.Second, "handshake refused: authentication required", func(f map[string]string) bool {
		return f["level"] == "WARN" && strings.Contains(f["hint"], "believed only from a --trustedproxy")
	})
}

// The --authcmd example lets users in by a file of names and paths, after
// --basicauth has said who they are; its AUTH_ALLOWED reaches the program.
func TestAuthCmd_TheExampleLetsUsersInByNameAndPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hook := filepath.Join(dir, "allow.sh")
	writeFile(t, hook, readExample(t, "auth/allow.sh"))
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "allowed"), "# test users\nalice /dash\nbob /\n")
	users := filepath.Join(dir, "users")
	htpasswdB(t, users, "alice", "a-pw")
	htpasswdB(t, users, "bob", "b-pw")
	htpasswdB(t, users, "eve", "e-pw")
	scripts := filepath.Join(dir, "scripts")
	if err := os.Mkdir(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dash", "admin"} {
		if err := os.WriteFile(filepath.Join(scripts, name), []byte("#!/bin/sh\n"+envDump+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	metrics := freeAddr(t)
	g := startGateway(t, "--basicauth="+users, "--authcmd="+hook, "--metrics="+metrics, "--dir="+scripts)

	expectIdentity(t, envOf(t, g.url("/dash"), basic("alice", "a-pw")), "Basic", "alice", map[string]string{"AUTH_ALLOWED": "/dash"}, "a-pw")
	expectIdentity(t, envOf(t, g.url("/admin"), basic("bob", "b-pw")), "Basic", "bob", map[string]string{"AUTH_ALLOWED": "/"}, "b-pw")
	expectStatus(t, g.url("/admin"), basic("alice", "a-pw"), http.StatusForbidden, "")
	expectStatus(t, g.url("/dash"), basic("eve", "e-pw"), http.StatusForbidden, "")
	expectStatus(t, g.url("/dash"), nil, http.StatusUnauthorized, basicChallenge)
	waitMetric(t, metrics, 3, "wsgate_handshakes_refused_total", "reason=auth")
	g.waitLog(5*time.Second, "authorization command stderr", func(f map[string]string) bool { return f["line"] == "alice may not reach /admin" })
	g.waitLog(5*time.Second, "handshake refused: forbidden", func(f map[string]string) bool {
		return f["level"] == "WARN" && strings.Contains(f["hint"], "said no (exit status 2)")
	})
}

// A command alone decides: from HTTP_AUTHORIZATION, which it alone sees;
// exit 1 gets 401, other exits 403; a command past --authtimeout gets 503;
// AUTH_TYPE is Command.
func TestAuthCmd_AloneDecidesAndIsBoundedInTime(t *testing.T) {
	t.Parallel()
	hook := writeScript(t, `case "$HTTP_AUTHORIZATION" in
"Bearer letmein") echo REMOTE_USER=hooked; echo AUTH_PLAN=gold ;;
"Bearer slow") sleep 30 ;;
"Bearer forbidden") exit 3 ;;
*) exit 1 ;;
esac`)
	g := startGateway(t, "--authcmd="+hook, "--authtimeout=500ms", writeScript(t, envDump))
	expectIdentity(t, envOf(t, g.url("/"), http.Header{"Authorization": {"Bearer letmein"}}), "Command", "hooked",
		map[string]string{"AUTH_PLAN": "gold", "HTTP_AUTHORIZATION": "unset"}, "letmein")
	expectStatus(t, g.url("/"), nil, http.StatusUnauthorized, "")
	expectStatus(t, g.url("/"), http.Header{"Authorization": {"Bearer forbidden"}}, http.StatusForbidden, "")
	start := time.Now()
	expectStatus(t, g.url("/"), http.Header{"Authorization": {"Bearer slow"}}, http.StatusServiceUnavailable, "")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("a command past --authtimeout=500ms held the handshake %v", elapsed)
	}
	g.waitLog(5*time.Second, "handshake refused: authorization unavailable", func(f map[string]string) bool {
		return strings.Contains(f["hint"], "no answer within --authtimeout=500ms; killed")
	})
	for _, p := range childrenOf(g.pid()) { // the sleep is gone with its command
		if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline"); strings.Contains(string(cmdline), "sleep") {
			t.Errorf("the timed-out command's sleep %d still runs", p)
		}
	}
}

// In broadcast mode the stream key leaves the token out: clients with
// different tokens and the same other parameters share one process, which
// has its first client's identity, like the rest of its environment.
func TestJWT_BroadcastStreamsAreKeyedWithoutTheToken(t *testing.T) {
	t.Parallel()
	secret, keyFile := opensslSecret(t)
	g := startGateway(t, "--broadcast", "--replay=1", "--jwtkey="+keyFile,
		writeScript(t, `echo "$REMOTE_USER $AUTH_TYPE $QUERY_STRING $$"; exec cat`))
	first := dial(t, g.url("/?room=1&access_token="+signToken(t, jose.HS256, secret, "", claimsFor("first"))))
	line := receive(t, first)
	if !strings.HasPrefix(line, "first Bearer room=1 ") {
		t.Fatalf("the shared process says %q, want its first client's identity and the query without the token", line)
	}
	second := dial(t, g.url("/?access_token="+signToken(t, jose.HS256, secret, "", claimsFor("second"))+"&room=1"))
	if got := receive(t, second); got != line {
		t.Fatalf("the second client got %q, want the replay of the same process's %q", got, line)
	}
	send(t, second, "from the second")
	for _, c := range []*websocket.Conn{first, second} {
		if got := receive(t, c); got != "from the second" {
			t.Fatalf("got %q: the clients do not share one process", got)
		}
	}
	// Each access line names its own client, and its path no token.
	for _, c := range []*websocket.Conn{first, second} {
		closeFromClient(t, c, websocket.CloseNormalClosure, "")
	}
	for _, user := range []string{"first", "second"} {
		g.waitLog(5*time.Second, "session ended", func(f map[string]string) bool { return f["user"] == user })
	}
	if strings.Contains(g.logs(), "access_token") {
		t.Errorf("the log holds the token parameter:\n%s", g.logs())
	}
}
