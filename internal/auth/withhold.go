package auth

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/wsgate/wsgate/internal/rawquery"
)

// Withhold returns r without the credentials the methods in use read, for
// what runs on r's behalf: the Authorization header, the token's cookie
// (the other cookies stay), the access_token parameter (the other
// parameters stay, in their order) and the user header. r itself is not
// changed; when it carries none of them, it is returned as it is. With no
// method in use, nothing is a credential and r is returned.
func (m Methods) Withhold(r *http.Request) *http.Request {
	if !m.Any() || !m.carries(r) {
		return r
	}
	w := r.Clone(r.Context())
	w.Header.Del("Authorization")
	if m.UserHeader != "" {
		w.Header.Del(m.UserHeader)
	}
	if m.TokenCookie != "" {
		withoutCookie(w.Header, m.TokenCookie)
	}
	if m.Tokens != nil {
		w.URL.RawQuery, _ = rawquery.Without(w.URL.RawQuery, TokenParameter)
		w.RequestURI = w.URL.RequestURI()
	}
	return w
}

// carries reports whether r holds anything Withhold takes away.
func (m Methods) carries(r *http.Request) bool {
	h := r.Header
	return h.Get("Authorization") != "" ||
		m.UserHeader != "" && len(h.Values(m.UserHeader)) > 0 ||
		m.TokenCookie != "" && len(h.Values("Cookie")) > 0 ||
		m.Tokens != nil && rawquery.Has(r.URL.RawQuery, TokenParameter)
}

// withoutCookie removes the cookie name from h's Cookie headers, keeping
// the others as they were written.
func withoutCookie(h http.Header, name string) {
	key := textproto.CanonicalMIMEHeaderKey("Cookie")
	var kept []string
	for _, line := range h[key] {
		var pairs []string
		for pair := range strings.SplitSeq(line, ";") {
			pair = strings.TrimSpace(pair)
			cookie, _, _ := strings.Cut(pair, "=")
			if pair != "" && cookie != name {
				pairs = append(pairs, pair)
			}
		}
		if len(pairs) > 0 {
			kept = append(kept, strings.Join(pairs, "; "))
		}
	}
	if len(kept) == 0 {
		h.Del(key)
		return
	}
	h[key] = kept
}
