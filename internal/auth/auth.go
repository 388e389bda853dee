// Package auth finds out who an HTTP request comes from, by the methods an
// operator chose: a password checked against an htpasswd file of bcrypt
// entries (Basic), a JSON Web Token (Tokens), the user a trusted reverse
// proxy names in a header, and a program that says yes or no (Command). It
// uses well-kept libraries for the cryptography (golang.org/x/crypto/bcrypt,
// github.com/go-jose/go-jose/v4) and implements none of it.
//
// Methods.Identify answers who a request is, or a Refusal saying how to
// answer it; Methods.Withhold returns the request without its credential,
// for whatever runs on its behalf. Nothing here logs a credential.
package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/rawquery"
)

// maxLoggedUser bounds a user name a client sent, in a log line.
const maxLoggedUser = 64

// Realm is the realm of every challenge.
const Realm = "wsgate"

// TokenParameter is the query parameter a token may come in: browsers
// cannot set a header on a WebSocket handshake.
const TokenParameter = "access_token"

// AUTH_TYPE values, one per method.
const (
	TypeBasic   = "Basic"
	TypeBearer  = "Bearer"
	TypeProxy   = "Proxy"
	TypeCommand = "Command"
)

// Identity is who a request was found to be.
type Identity struct {
	// Type is how it was found: TypeBasic, TypeBearer, TypeProxy or
	// TypeCommand (AUTH_TYPE); "" when no method is in use.
	Type string
	// User is the user's name (REMOTE_USER): the htpasswd user, the
	// token's "sub", the proxy's header, or what the command said.
	User string
	// Expires is when the credential stops vouching for the user: a
	// token's "exp". Zero for never.
	Expires time.Time
	// Vars are "AUTH_<NAME>=value" entries the command gave.
	Vars []string
}

// A Refusal is a request no method let in, and how to answer it.
type Refusal struct {
	// Status is 401 (no credential, or one that is wrong), 403 (the
	// command said no) or 503 (the command could not answer in time).
	Status int
	// Reason is what the client is told.
	Reason string
	// Detail is what the log says: why, and what would change it. It
	// never holds the credential.
	Detail string
	// Challenges are the WWW-Authenticate values of a 401.
	Challenges []string
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Detail }

// Methods are the ways a request may say who it is. Its zero value has
// none, and lets anyone in.
type Methods struct {
	// Basic checks "Authorization: Basic" against an htpasswd file.
	Basic *Basic
	// Tokens checks a JWT from "Authorization: Bearer", from the cookie
	// TokenCookie names, or from the access_token query parameter.
	Tokens *Tokens
	// TokenCookie is the cookie a token may come in; "" for none.
	TokenCookie string
	// UserHeader is the header a trusted proxy names the user in; "" for
	// none. A request that comes from another peer is not believed.
	UserHeader string
	// Command is run for each request the methods above let in, and has
	// the last word (the gateway runs it: it needs the CGI environment).
	Command *Command
}

// Any reports whether any method is in use: then a request must pass them.
func (m Methods) Any() bool {
	return m.Basic != nil || m.Tokens != nil || m.UserHeader != "" || m.Command != nil
}

// identifies reports whether a method other than the command is in use:
// then one of them must vouch for the request.
func (m Methods) identifies() bool {
	return m.Basic != nil || m.Tokens != nil || m.UserHeader != ""
}

// Identify finds who r comes from. trustedPeer says r came from a
// --trustedproxy, whose user header is believed. A proxy's header wins;
// then the Authorization header decides, if there is one; then a token's
// cookie or parameter. A credential that is there but wrong is refused, as
// is a request with none when a method other than the command is in use.
// ctx bounds the wait for bcrypt.
func (m Methods) Identify(ctx context.Context, r *http.Request, trustedPeer bool) (Identity, *Refusal) {
	if !m.identifies() {
		return Identity{}, nil
	}
	if m.UserHeader != "" && trustedPeer {
		if user := r.Header.Get(m.UserHeader); user != "" {
			return Identity{Type: TypeProxy, User: user}, nil
		}
	}
	if authz := r.Header.Get("Authorization"); authz != "" {
		return m.authorization(ctx, authz)
	}
	if m.Tokens != nil {
		if raw, from := m.tokenOf(r); raw != "" {
			return m.bearer(raw, from)
		}
	}
	return Identity{}, m.refuse("authentication required", m.missing(trustedPeer), false)
}

// authorization checks an Authorization header.
func (m Methods) authorization(ctx context.Context, authz string) (Identity, *Refusal) {
	scheme, credential, _ := strings.Cut(authz, " ")
	credential = strings.TrimSpace(credential)
	switch {
	case strings.EqualFold(scheme, "Basic") && m.Basic != nil:
		return m.basic(ctx, credential)
	case strings.EqualFold(scheme, "Bearer") && m.Tokens != nil:
		return m.bearer(credential, "the Authorization header")
	}
	return Identity{}, m.refuse("unsupported Authorization scheme",
		fmt.Sprintf("Authorization scheme %q: %s", truncate(scheme, 20), m.accepted()), false)
}

// basic checks a Basic credential.
func (m Methods) basic(ctx context.Context, credential string) (Identity, *Refusal) {
	decoded, err := base64.StdEncoding.DecodeString(credential)
	user, password, ok := strings.Cut(string(decoded), ":")
	if err != nil || !ok {
		return Identity{}, m.refuse("malformed Authorization header", "Basic credential is not base64 of user:password", false)
	}
	named := truncate(user, maxLoggedUser)
	switch err := m.Basic.Verify(ctx, user, password); {
	case errors.Is(err, errUnknownUser):
		return Identity{}, m.refuse("wrong user or password",
			fmt.Sprintf("user %q is not in %s: add it with htpasswd -B, then SIGHUP", named, m.Basic.Path()), false)
	case errors.Is(err, errWrongPassword):
		return Identity{}, m.refuse("wrong user or password",
			fmt.Sprintf("wrong password for user %q (%s)", named, m.Basic.Path()), false)
	case err != nil:
		return Identity{}, &Refusal{Status: http.StatusServiceUnavailable, Reason: "authentication unavailable",
			Detail: "waiting for a password check: " + err.Error()}
	}
	return Identity{Type: TypeBasic, User: user}, nil
}

// bearer checks a token that came from where from says.
func (m Methods) bearer(raw, from string) (Identity, *Refusal) {
	claims, err := m.Tokens.Verify(raw)
	if err != nil {
		return Identity{}, m.refuse("invalid token", fmt.Sprintf("token from %s: %v", from, err), true)
	}
	return Identity{Type: TypeBearer, User: claims.Subject, Expires: claims.Expires}, nil
}

// tokenOf returns a token from the cookie, else from the query, and where
// it came from.
func (m Methods) tokenOf(r *http.Request) (string, string) {
	if m.TokenCookie != "" {
		if c, err := r.Cookie(m.TokenCookie); err == nil && c.Value != "" {
			return c.Value, "cookie " + m.TokenCookie
		}
	}
	if raw := rawquery.Value(r.URL.RawQuery, TokenParameter); raw != "" {
		return raw, "the " + TokenParameter + " parameter"
	}
	return "", ""
}

// missing says, for the log, what a request without any credential lacks.
func (m Methods) missing(trustedPeer bool) string {
	detail := "no credential: " + m.accepted()
	if m.UserHeader != "" && !trustedPeer {
		detail += "; a " + m.UserHeader + " header is believed only from a --trustedproxy"
	}
	return detail
}

// accepted says which credentials are accepted.
func (m Methods) accepted() string {
	var ways []string
	if m.UserHeader != "" {
		ways = append(ways, "a "+m.UserHeader+" header from a trusted proxy")
	}
	if m.Basic != nil {
		ways = append(ways, "Authorization: Basic")
	}
	if m.Tokens != nil {
		way := "Authorization: Bearer, the " + TokenParameter + " parameter"
		if m.TokenCookie != "" {
			way += ", cookie " + m.TokenCookie
		}
		ways = append(ways, way)
	}
	return "send " + strings.Join(ways, " or ")
}

// refuse is a 401 with the challenges of the methods in use; badToken
// marks a Bearer challenge as answering a token that was refused.
func (m Methods) refuse(reason, detail string, badToken bool) *Refusal {
	return &Refusal{Status: http.StatusUnauthorized, Reason: reason, Detail: detail, Challenges: m.challenges(badToken)}
}

// challenges are the WWW-Authenticate values of a 401.
func (m Methods) challenges(badToken bool) []string {
	var c []string
	if m.Basic != nil {
		c = append(c, `Basic realm="`+Realm+`", charset="UTF-8"`)
	}
	if m.Tokens != nil {
		bearer := `Bearer realm="` + Realm + `"`
		if badToken {
			bearer += `, error="invalid_token"`
		}
		c = append(c, bearer)
	}
	return c
}

// Challenges are the WWW-Authenticate values of a 401 that no credential
// was checked for (the command's).
func (m Methods) Challenges() []string { return m.challenges(false) }

// truncate cuts s to n bytes for a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
