package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/bcrypt"
)

// benchBasic is Basic over one user whose hash has bcrypt's cost 10.
func benchBasic(b *testing.B) *Basic {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	if err != nil {
		b.Fatal(err)
	}
	basic, err := LoadBasic(writeHtpasswd(b, "", "alice:"+string(hash)+"\n"))
	if err != nil {
		b.Fatal(err)
	}
	return basic
}

// One bcrypt verification at cost 10: what a credential not seen before
// costs (a wrong password is never remembered, so each is checked).
func BenchmarkBasicVerifyBcryptCost10(b *testing.B) {
	basic := benchBasic(b)
	for b.Loop() {
		_ = basic.Verify(context.Background(), "alice", "wrong")
	}
}

// A remembered credential: what a reconnecting client costs.
func BenchmarkBasicVerifyRemembered(b *testing.B) {
	basic := benchBasic(b)
	if err := basic.Verify(context.Background(), "alice", "pw"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := basic.Verify(context.Background(), "alice", "pw"); err != nil {
			b.Fatal(err)
		}
	}
}

// One RS256 token, verified as each handshake does.
func BenchmarkTokensVerifyRS256(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := publicKey(key.Public())
	if err != nil {
		b.Fatal(err)
	}
	tokens := newTokens([]verificationKey{pub}, TokenOptions{})
	raw := sign(b, jose.RS256, key, "", valid("alice"))
	for b.Loop() {
		if _, err := tokens.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}
