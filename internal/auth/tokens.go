package auth

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxTokenSize bounds a token before it is parsed: a JWT that carries
// identity is a few hundred bytes, one with many claims a few kilobytes.
const maxTokenSize = 16 << 10

// Why a token is refused, for the log (the client gets 401 alone).
var (
	errTokenExpired     = errors.New("token expired")
	errTokenNotYetValid = errors.New("token not yet valid")
	errTokenAudience    = errors.New("token is for another audience")
	errTokenIssuer      = errors.New("token is from another issuer")
	errTokenKey         = errors.New("no key for the token's kid")
	errTokenSignature   = errors.New("bad signature")
	errTokenTooBig      = fmt.Errorf("token over %d bytes", maxTokenSize)
)

// Tokens verifies JSON Web Tokens: signed with its key (or one of a JWKS's,
// chosen by kid) in an algorithm that key is used with, current (exp, nbf),
// and for the audience and from the issuer it expects, when it expects one.
// It is safe for concurrent use.
type Tokens struct {
	keys     []verificationKey
	algs     []jose.SignatureAlgorithm // those of every key
	jwks     bool                      // keys are chosen by kid
	audience string
	issuer   string
	clock    func() time.Time
}

// TokenOptions are what a token must say besides being signed.
type TokenOptions struct {
	// Audience, when set, must be one of the token's "aud".
	Audience string
	// Issuer, when set, must be the token's "iss".
	Issuer string
}

// LoadTokens reads the key file at path: an HMAC secret, a PEM public key
// or a JWKS document.
func LoadTokens(path string, opts TokenOptions) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return newTokens(keys, opts), nil
}

func newTokens(keys []verificationKey, opts TokenOptions) *Tokens {
	t := &Tokens{keys: keys, audience: opts.Audience, issuer: opts.Issuer, clock: time.Now}
	for _, k := range keys {
		t.jwks = t.jwks || k.kid != ""
		for _, alg := range k.algs {
			if !slices.Contains(t.algs, alg) {
				t.algs = append(t.algs, alg)
			}
		}
	}
	return t
}

// Claims are what wsgate takes of a verified token.
type Claims struct {
	Subject string    // "sub": the user
	Expires time.Time // "exp"; zero when the token has none
}

// Verify checks raw, a compact JWT, and returns its claims.
func (t *Tokens) Verify(raw string) (Claims, error) {
	if len(raw) > maxTokenSize {
		return Claims{}, errTokenTooBig
	}
	// Only the keys' algorithms parse: "none" and an HMAC signature made
	// with an RSA key's public PEM are refused here.
	tok, err := jwt.ParseSigned(raw, t.algs)
	if err != nil {
		return Claims{}, fmt.Errorf("malformed token or algorithm not accepted (%s): %w", t.algorithmsAccepted(), err)
	}
	header := tok.Headers[0]
	k, err := t.keyFor(header)
	if err != nil {
		return Claims{}, err
	}
	if alg := jose.SignatureAlgorithm(header.Algorithm); !slices.Contains(k.algs, alg) {
		return Claims{}, fmt.Errorf("algorithm %s does not go with key %q, which takes %v", alg, k.kid, k.algs)
	}
	var c jwt.Claims
	if err := tok.Claims(k.key, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", errTokenSignature, err)
	}
	return t.validate(c)
}

// keyFor chooses the key a token names by its kid: in a JWKS of several
// keys it must name one; a single key is used whatever it names.
func (t *Tokens) keyFor(header jose.Header) (verificationKey, error) {
	if len(t.keys) == 1 && (!t.jwks || header.KeyID == "") {
		return t.keys[0], nil
	}
	for _, k := range t.keys {
		if k.kid == header.KeyID {
			return k, nil
		}
	}
	return verificationKey{}, fmt.Errorf("%w %q", errTokenKey, header.KeyID)
}

// validate checks a signed token's claims: exp (no leeway: a session ends
// at exp, so a token is refused from then on), nbf, iat, aud and iss.
func (t *Tokens) validate(c jwt.Claims) (Claims, error) {
	now := t.clock()
	expected := jwt.Expected{Issuer: t.issuer, Time: now}
	if t.audience != "" {
		expected.AnyAudience = jwt.Audience{t.audience}
	}
	switch err := c.ValidateWithLeeway(expected, 0); {
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Claims{}, fmt.Errorf("%w: want %q in aud, got %q", errTokenAudience, t.audience, []string(c.Audience))
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return Claims{}, fmt.Errorf("%w: want %q, got %q", errTokenIssuer, t.issuer, c.Issuer)
	case errors.Is(err, jwt.ErrExpired):
		return Claims{}, errTokenExpired
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Claims{}, errTokenNotYetValid
	case err != nil:
		return Claims{}, err
	}
	var claims Claims
	if c.Expiry != nil {
		claims.Expires = c.Expiry.Time()
		if !now.Before(claims.Expires) {
			return Claims{}, errTokenExpired
		}
	}
	claims.Subject = c.Subject
	return claims, nil
}

// algorithmsAccepted lists the algorithms tokens may be signed with.
func (t *Tokens) algorithmsAccepted() string {
	return fmt.Sprintf("the key takes %v", t.algs)
}

// Describe says what the key file holds, for the start-up log.
func (t *Tokens) Describe() string {
	if t.jwks {
		return fmt.Sprintf("a JWKS of %d keys (%v)", len(t.keys), t.algs)
	}
	return fmt.Sprintf("one key (%v)", t.algs)
}
