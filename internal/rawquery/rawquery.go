// Package rawquery reads and removes parameters of a URL's raw query
// string, leaving the others as the client wrote them and in their order:
// what a request passes on (QUERY_STRING, a broadcast stream's key) is what
// the client sent, less the parameters wsgate took for itself (a token, a
// position to resume from).
package rawquery

import (
	"net/http"
	"net/url"
	"strings"
)

// Unescape is s with its query escapes undone, or s as it is when it has
// bad ones.
func Unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// Has reports whether raw names the parameter name.
func Has(raw, name string) bool {
	for piece := range strings.SplitSeq(raw, "&") {
		if key, _, _ := strings.Cut(piece, "="); Unescape(key) == name {
			return true
		}
	}
	return false
}

// Value returns the first value of the parameter name in raw, unescaped;
// "" when there is none.
func Value(raw, name string) string {
	for piece := range strings.SplitSeq(raw, "&") {
		if key, value, _ := strings.Cut(piece, "="); Unescape(key) == name {
			return Unescape(value)
		}
	}
	return ""
}

// Without returns raw without the parameters named name, the others kept
// as they were written and in their order, and the values of those it
// dropped, unescaped (a value that does not unescape is kept as written).
// When raw does not name it, raw is returned as it is.
func Without(raw, name string) (string, []string) {
	if !strings.Contains(raw, name) && !strings.Contains(raw, "%") {
		return raw, nil // the common case: nothing to look at
	}
	var kept, values []string
	for piece := range strings.SplitSeq(raw, "&") {
		key, value, _ := strings.Cut(piece, "=")
		if Unescape(key) != name {
			kept = append(kept, piece)
			continue
		}
		values = append(values, Unescape(value))
	}
	if len(values) == 0 {
		return raw, nil
	}
	return strings.Join(kept, "&"), values
}

// WithQuery returns a shallow copy of r whose URL (and RequestURI) has the
// raw query string raw; r itself is not changed.
func WithQuery(r *http.Request, raw string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.RawQuery = raw
	r2.URL = &u
	if r.RequestURI != "" {
		r2.RequestURI = u.RequestURI()
	}
	return r2
}
