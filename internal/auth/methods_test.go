package auth

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func basicHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestMethods_Identify(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	basic, _ := loadBasic(t, bcryptLine(t, "alice", "pw"))
	tokens := newTokens([]verificationKey{mustHMAC(t, k.secret)}, TokenOptions{})
	token := sign(t, jose.HS256, k.secret, "", valid("bob"))
	all := Methods{Basic: basic, Tokens: tokens, TokenCookie: "jwt", UserHeader: "X-Auth-Request-User"}

	cases := []struct {
		name     string
		methods  Methods
		trusted  bool
		target   string
		headers  map[string]string
		wantType string
		wantUser string
		status   int
		detail   string
	}{
		{name: "no method", methods: Methods{}, target: "/", wantType: ""},
		{name: "basic", methods: all, target: "/", headers: map[string]string{"Authorization": basicHeader("alice", "pw")}, wantType: TypeBasic, wantUser: "alice"},
		{name: "basic, scheme in lower case", methods: all, target: "/", headers: map[string]string{"Authorization": "basic " + strings.TrimPrefix(basicHeader("alice", "pw"), "Basic ")}, wantType: TypeBasic, wantUser: "alice"},
		{name: "wrong password", methods: all, target: "/", headers: map[string]string{"Authorization": basicHeader("alice", "no")}, status: 401, detail: `wrong password for user "alice"`},
		{name: "unknown user", methods: all, target: "/", headers: map[string]string{"Authorization": basicHeader("eve", "pw")}, status: 401, detail: `user "eve" is not in`},
		{name: "malformed basic", methods: all, target: "/", headers: map[string]string{"Authorization": "Basic !!!"}, status: 401, detail: "not base64"},
		{name: "basic without a colon", methods: all, target: "/", headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, status: 401, detail: "not base64 of user:password"},
		{name: "unsupported scheme", methods: all, target: "/", headers: map[string]string{"Authorization": "Digest x"}, status: 401, detail: `scheme "Digest"`},
		{name: "bearer", methods: all, target: "/", headers: map[string]string{"Authorization": "Bearer " + token}, wantType: TypeBearer, wantUser: "bob"},
		{name: "bearer without tokens", methods: Methods{Basic: basic}, target: "/", headers: map[string]string{"Authorization": "Bearer " + token}, status: 401, detail: "send Authorization: Basic"},
		{name: "cookie", methods: all, target: "/", headers: map[string]string{"Cookie": "a=1; jwt=" + token}, wantType: TypeBearer, wantUser: "bob"},
		{name: "cookie not configured", methods: Methods{Tokens: tokens}, target: "/", headers: map[string]string{"Cookie": "jwt=" + token}, status: 401, detail: "no credential"},
		{name: "parameter", methods: all, target: "/?room=1&access_token=" + token, wantType: TypeBearer, wantUser: "bob"},
		{name: "bad token in the parameter", methods: all, target: "/?access_token=x.y.z", status: 401, detail: "token from the access_token parameter"},
		{name: "header from a trusted proxy", methods: all, trusted: true, target: "/", headers: map[string]string{"X-Auth-Request-User": "carol", "Authorization": "Digest x"}, wantType: TypeProxy, wantUser: "carol"},
		{name: "header from anyone else", methods: Methods{UserHeader: "X-Auth-Request-User"}, target: "/", headers: map[string]string{"X-Auth-Request-User": "carol"}, status: 401, detail: "believed only from a --trustedproxy"},
		{name: "empty header counts as missing", methods: Methods{UserHeader: "X-Auth-Request-User"}, trusted: true, target: "/", headers: map[string]string{"X-Auth-Request-User": ""}, status: 401, detail: "no credential"},
		{name: "nothing", methods: all, target: "/", status: 401, detail: "no credential"},
		{name: "command alone lets the command decide", methods: Methods{Command: &Command{}}, target: "/", wantType: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, c.target, nil)
			for name, value := range c.headers {
				r.Header.Set(name, value)
			}
			id, ref := c.methods.Identify(context.Background(), r, c.trusted)
			if c.status != 0 {
				if ref == nil || ref.Status != c.status || !strings.Contains(ref.Detail, c.detail) {
					t.Fatalf("got %+v %+v, want %d with detail %q", id, ref, c.status, c.detail)
				}
				if strings.Contains(ref.Detail, "pw") && strings.Contains(c.name, "password") {
					t.Fatalf("the detail %q holds the password", ref.Detail)
				}
				return
			}
			if ref != nil {
				t.Fatalf("refused: %v", ref)
			}
			if id.Type != c.wantType || id.User != c.wantUser {
				t.Fatalf("identity %+v, want %s %q", id, c.wantType, c.wantUser)
			}
		})
	}
}

func mustHMAC(t *testing.T, secret []byte) verificationKey {
	t.Helper()
	k, err := hmacKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMethods_ChallengesNameTheRealm(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	basic, _ := loadBasic(t, bcryptLine(t, "alice", "pw"))
	m := Methods{Basic: basic, Tokens: newTokens([]verificationKey{mustHMAC(t, k.secret)}, TokenOptions{})}
	_, ref := m.Identify(context.Background(), httptest.NewRequest(http.MethodGet, "/?access_token=bad", nil), false)
	want := []string{`Basic realm="wsgate", charset="UTF-8"`, `Bearer realm="wsgate", error="invalid_token"`}
	if ref == nil || !slices.Equal(ref.Challenges, want) {
		t.Fatalf("challenges %q, want %q", ref.Challenges, want)
	}
}

func TestMethods_WithholdDropsTheCredentialsAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	m := Methods{Tokens: &Tokens{}, TokenCookie: "jwt", UserHeader: "X-User"}
	r := httptest.NewRequest(http.MethodGet, "/room?a=1&access_token=SECRET&b=2&access%5Ftoken=SECRET2&c", nil)
	r.Header.Set("Authorization", "Bearer SECRET")
	r.Header.Set("X-User", "alice")
	r.Header.Add("Cookie", "theme=dark; jwt=SECRET; lang=en")
	r.Header.Add("Cookie", "jwt=SECRET")
	r.Header.Set("X-Other", "kept")
	w := m.Withhold(r)
	if got := w.URL.RawQuery; got != "a=1&b=2&c" {
		t.Errorf("query %q, want a=1&b=2&c", got)
	}
	if got := w.URL.RequestURI(); got != "/room?a=1&b=2&c" {
		t.Errorf("request URI %q", got)
	}
	if got := w.Header.Values("Cookie"); !slices.Equal(got, []string{"theme=dark; lang=en"}) {
		t.Errorf("cookies %q, want theme and lang", got)
	}
	for _, h := range []string{"Authorization", "X-User"} {
		if w.Header.Get(h) != "" {
			t.Errorf("%s kept", h)
		}
	}
	if w.Header.Get("X-Other") != "kept" {
		t.Error("another header dropped")
	}
	if r.Header.Get("Authorization") == "" || !strings.Contains(r.URL.RawQuery, "SECRET") {
		t.Error("the original request was changed")
	}

	plain := httptest.NewRequest(http.MethodGet, "/room?a=1", nil)
	if m.Withhold(plain) != plain {
		t.Error("a request without credentials was copied")
	}
	if (Methods{}).Withhold(r) != r {
		t.Error("with no method in use, Authorization was taken from the program")
	}
}
