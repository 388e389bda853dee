package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/wsgate/wsgate/internal/testrun"
)

// sign returns a compact JWT of claims signed with key in alg, naming kid
// when it is not "".
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	return testrun.SignToken(t, alg, key, kid, claims)
}

// unsigned returns a token with "alg": "none".
func unsigned(claims any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "."
}

// pemPublic returns the PEM of a public key.
func pemPublic(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// tokensFrom loads a key file holding data.
func tokensFrom(t *testing.T, data []byte, opts TokenOptions) *Tokens {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadTokens(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testKeys are one key of each kind, made once.
type testKeys struct {
	secret []byte
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
}

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{secret: []byte(strings.Repeat("s3cret-", 10)), rsa: rsaKey, ec: ecKey, ed: edKey}
}

func valid(sub string) jwt.Claims {
	now := time.Now()
	return jwt.Claims{Subject: sub, Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
}

func TestTokens_TheKeyDecidesTheAlgorithm(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	hmacTokens := tokensFrom(t, append(k.secret, '\n'), TokenOptions{})
	rsaPEM := pemPublic(t, k.rsa.Public())
	rsaTokens := tokensFrom(t, rsaPEM, TokenOptions{})
	ecTokens := tokensFrom(t, pemPublic(t, k.ec.Public()), TokenOptions{})
	edTokens := tokensFrom(t, pemPublic(t, k.ed.Public()), TokenOptions{})
	cases := []struct {
		name   string
		tokens *Tokens
		raw    string
		ok     bool
	}{
		{"HS256", hmacTokens, sign(t, jose.HS256, k.secret, "", valid("hs")), true},
		{"HS512 with a secret long enough", hmacTokens, sign(t, jose.HS512, k.secret, "", valid("hs")), true},
		{"RS256", rsaTokens, sign(t, jose.RS256, k.rsa, "", valid("rs")), true},
		{"PS256", rsaTokens, sign(t, jose.PS256, k.rsa, "", valid("ps")), true},
		{"ES256", ecTokens, sign(t, jose.ES256, k.ec, "", valid("es")), true},
		{"EdDSA", edTokens, sign(t, jose.EdDSA, k.ed, "", valid("ed")), true},
		{"alg none", rsaTokens, unsigned(valid("none")), false},
		{"alg none against a secret", hmacTokens, unsigned(valid("none")), false},
		{"HS256 signed with the RSA key's public PEM", rsaTokens, sign(t, jose.HS256, rsaPEM, "", valid("confused")), false},
		{"RS256 against an EC key", ecTokens, sign(t, jose.RS256, k.rsa, "", valid("x")), false},
		{"ES256 against an RSA key", rsaTokens, sign(t, jose.ES256, k.ec, "", valid("x")), false},
		{"RS256 against a secret", hmacTokens, sign(t, jose.RS256, k.rsa, "", valid("x")), false},
		{"another secret", hmacTokens, sign(t, jose.HS256, []byte(strings.Repeat("other-", 10)), "", valid("x")), false},
		{"garbage", rsaTokens, "not.a.token", false},
		{"too big", hmacTokens, strings.Repeat("a", maxTokenSize+1), false},
	}
	for _, c := range cases {
		claims, err := c.tokens.Verify(c.raw)
		if c.ok && (err != nil || claims.Subject == "") {
			t.Errorf("%s: refused: %v", c.name, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: accepted (sub %q)", c.name, claims.Subject)
		}
	}
}

func TestTokens_ChecksTimeAudienceAndIssuer(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	tokens := tokensFrom(t, k.secret, TokenOptions{Audience: "wsgate", Issuer: "https://id.example"})
	now := time.Now()
	claims := func(edit func(*jwt.Claims)) jwt.Claims {
		c := jwt.Claims{Subject: "alice", Audience: jwt.Audience{"other", "wsgate"}, Issuer: "https://id.example",
			Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
		edit(&c)
		return c
	}
	cases := []struct {
		name   string
		claims jwt.Claims
		want   error
	}{
		{"current", claims(func(*jwt.Claims) {}), nil},
		{"no exp", claims(func(c *jwt.Claims) { c.Expiry = nil }), nil},
		{"expired", claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Second)) }), errTokenExpired},
		{"not yet valid", claims(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), errTokenNotYetValid},
		{"wrong audience", claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"other"} }), errTokenAudience},
		{"no audience", claims(func(c *jwt.Claims) { c.Audience = nil }), errTokenAudience},
		{"wrong issuer", claims(func(c *jwt.Claims) { c.Issuer = "https://evil.example" }), errTokenIssuer},
	}
	for _, c := range cases {
		got, err := tokens.Verify(sign(t, jose.HS256, k.secret, "", c.claims))
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		case c.want == nil && c.claims.Expiry != nil && !got.Expires.Equal(c.claims.Expiry.Time()):
			t.Errorf("%s: expires %v, want the token's exp %v", c.name, got.Expires, c.claims.Expiry.Time())
		}
	}
}

func TestTokens_AJWKSKeyIsChosenByKid(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: "rsa-1", Use: "sig", Algorithm: "RS256"},
		{Key: k.ec.Public(), KeyID: "ec-1"},
		{Key: other.Public(), KeyID: "enc-1", Use: "enc"},
	}}
	doc, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	tokens := tokensFrom(t, doc, TokenOptions{})
	if _, err := tokens.Verify(sign(t, jose.RS256, k.rsa, "rsa-1", valid("a"))); err != nil {
		t.Errorf("RS256 with kid rsa-1: %v", err)
	}
	if _, err := tokens.Verify(sign(t, jose.ES256, k.ec, "ec-1", valid("b"))); err != nil {
		t.Errorf("ES256 with kid ec-1: %v", err)
	}
	refused := map[string]string{
		"RS256 naming the EC key":             sign(t, jose.RS256, k.rsa, "ec-1", valid("c")),
		"PS256 with a key published as RS256": sign(t, jose.PS256, k.rsa, "rsa-1", valid("c")),
		"an unknown kid":                      sign(t, jose.RS256, k.rsa, "rsa-2", valid("c")),
		"no kid":                              sign(t, jose.RS256, k.rsa, "", valid("c")),
		"the encryption key":                  sign(t, jose.RS256, other, "enc-1", valid("c")),
	}
	for name, raw := range refused {
		if _, err := tokens.Verify(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseKeys_RefusesWhatCannotBeUsedSaying(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	privateJWK, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.rsa, KeyID: "p"}}})
	wrongAlg, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.ec.Public(), KeyID: "e", Algorithm: "RS256"}}})
	cases := map[string]struct {
		data []byte
		want string
	}{
		"short secret":    {[]byte("too-short\n"), "HS256 needs 32 at least"},
		"private PEM":     {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "give wsgate the public key only"},
		"small RSA":       {pemPublic(t, small.Public()), "an RSA key of 1024 bits"},
		"private JWK":     {privateJWK, "publish the public key only"},
		"alg of a JWK":    {wrongAlg, `"alg": "RS256" does not go with this key`},
		"broken JSON":     {[]byte(`{"keys": [`), "JSON"},
		"empty JWKS":      {[]byte(`{"keys": []}`), "no signing key"},
		"two PEM blocks":  {append(pemPublic(t, k.ec.Public()), pemPublic(t, k.ed.Public())...), "more than one PEM block"},
		"a PEM of a CSR":  {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}), "want a PUBLIC KEY or a CERTIFICATE"},
		"a broken PEM":    {[]byte("-----BEGIN PUBLIC KEY-----\nnot base64\n"), "not a PEM block"},
		"unknown JWK kty": {[]byte(`{"kty": "XYZ"}`), "JWK"},
	}
	for name, c := range cases {
		if _, err := parseKeys(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

// An HMAC secret is the file's bytes less one final newline: a secret
// ending in a space, or in two newlines, is taken as it is.
func TestParseKeys_SecretIsTheFileLessAFinalNewline(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("x", 40) + " \n")
	tokens := tokensFrom(t, append(append([]byte{}, secret...), '\n'), TokenOptions{})
	if _, err := tokens.Verify(sign(t, jose.HS256, secret, "", valid("a"))); err != nil {
		t.Fatalf("the secret with its own trailing space and newline: %v", err)
	}
	if _, err := tokens.Verify(sign(t, jose.HS256, secret[:len(secret)-1], "", valid("a"))); err == nil {
		t.Fatal("a secret less two newlines accepted")
	}
}
