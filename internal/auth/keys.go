package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// Key sizes below which a key is refused at start-up.
const (
	// minHMACSecret is HS256's: RFC 7518 section 3.2 wants a secret at least
	// as long as the hash, and go-jose refuses a shorter one.
	minHMACSecret = 32
	// minRSABits is the smallest RSA modulus accepted.
	minRSABits = 2048
)

// verificationKey is one key tokens may be signed with, and the algorithms
// it is used with: the key's kind decides them, never the token.
type verificationKey struct {
	kid  string // its JWKS key id; "" for a key file of one key
	key  any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs []jose.SignatureAlgorithm
}

// parseKeys reads a --jwtkey file: a PEM public key (or certificate), a
// JWKS document (or a single JWK), or else an HMAC secret, the file's bytes
// less a final newline.
func parseKeys(data []byte) ([]verificationKey, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN ")):
		k, err := parsePEMKey(trimmed)
		if err != nil {
			return nil, err
		}
		return []verificationKey{k}, nil
	case bytes.HasPrefix(trimmed, []byte("{")):
		return parseJWKS(trimmed)
	}
	secret := bytes.TrimSuffix(data, []byte("\n"))
	secret = bytes.TrimSuffix(secret, []byte("\r"))
	k, err := hmacKey(secret)
	if err != nil {
		return nil, err
	}
	return []verificationKey{k}, nil
}

// hmacKey is a secret shared with whoever signs the tokens.
func hmacKey(secret []byte) (verificationKey, error) {
	if len(secret) < minHMACSecret {
		return verificationKey{}, fmt.Errorf("the HMAC secret is %d bytes: HS256 needs %d at least (make one with: openssl rand -base64 48)", len(secret), minHMACSecret)
	}
	algs := []jose.SignatureAlgorithm{jose.HS256}
	if len(secret) >= 48 {
		algs = append(algs, jose.HS384)
	}
	if len(secret) >= 64 {
		algs = append(algs, jose.HS512)
	}
	return verificationKey{key: bytes.Clone(secret), algs: algs}, nil
}

// parsePEMKey reads one PEM block: a public key or a certificate.
func parsePEMKey(data []byte) (verificationKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return verificationKey{}, errors.New("not a PEM block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return verificationKey{}, errors.New("more than one PEM block: give one public key, or a JWKS document for several")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return verificationKey{}, errors.New("this is a private key: give wsgate the public key only (openssl pkey -in KEY -pubout -out PUBLIC.pem)")
	default:
		return verificationKey{}, fmt.Errorf("a PEM %q block: want a PUBLIC KEY or a CERTIFICATE", block.Type)
	}
	if err != nil {
		return verificationKey{}, fmt.Errorf("PEM %s: %w", block.Type, err)
	}
	return publicKey(pub)
}

// publicKey returns pub with the algorithms its kind is used with.
func publicKey(pub any) (verificationKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return verificationKey{}, fmt.Errorf("an RSA key of %d bits: use %d or more", bits, minRSABits)
		}
		return verificationKey{key: k, algs: []jose.SignatureAlgorithm{
			jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}}, nil
	case *ecdsa.PublicKey:
		alg, ok := map[elliptic.Curve]jose.SignatureAlgorithm{
			elliptic.P256(): jose.ES256, elliptic.P384(): jose.ES384, elliptic.P521(): jose.ES512}[k.Curve]
		if !ok {
			return verificationKey{}, fmt.Errorf("an EC key on curve %s: want P-256, P-384 or P-521", k.Curve.Params().Name)
		}
		return verificationKey{key: k, algs: []jose.SignatureAlgorithm{alg}}, nil
	case ed25519.PublicKey:
		return verificationKey{key: k, algs: []jose.SignatureAlgorithm{jose.EdDSA}}, nil
	}
	return verificationKey{}, fmt.Errorf("a %T: want an RSA, EC or Ed25519 public key", pub)
}

// parseJWKS reads a JWK set ({"keys": [...]}) or a single JWK. Keys for
// encryption ("use": "enc") are skipped; a key's "alg", when given, must be
// one its kind is used with, and then is the only one.
func parseJWKS(data []byte) ([]verificationKey, error) {
	var set jose.JSONWebKeySet
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if probe.Keys != nil {
		if err := json.Unmarshal(data, &set); err != nil {
			return nil, fmt.Errorf("JWKS: %w", err)
		}
	} else {
		var one jose.JSONWebKey
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("JWK: %w", err)
		}
		set.Keys = []jose.JSONWebKey{one}
	}
	var keys []verificationKey
	for i, jwk := range set.Keys {
		if jwk.Use != "" && jwk.Use != "sig" {
			continue
		}
		k, err := jwkKey(jwk)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, jwk.KeyID, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("the JWKS holds no signing key")
	}
	return keys, nil
}

// jwkKey is one key of a JWKS.
func jwkKey(jwk jose.JSONWebKey) (verificationKey, error) {
	var k verificationKey
	var err error
	switch key := jwk.Key.(type) {
	case []byte:
		k, err = hmacKey(key)
	default:
		if !jwk.IsPublic() {
			return k, errors.New("a private key: publish the public key only")
		}
		k, err = publicKey(key)
	}
	if err != nil {
		return k, err
	}
	k.kid = jwk.KeyID
	if jwk.Algorithm != "" {
		alg := jose.SignatureAlgorithm(jwk.Algorithm)
		if !slices.Contains(k.algs, alg) {
			return k, fmt.Errorf("\"alg\": %q does not go with this key: it takes %v", jwk.Algorithm, k.algs)
		}
		k.algs = []jose.SignatureAlgorithm{alg}
	}
	return k, nil
}
