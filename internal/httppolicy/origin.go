package httppolicy

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Origins decides which browser origins may open a WebSocket. Same-origin
// handshakes and those without an Origin header (non-browser clients) are
// always allowed; allowed lists the others. The zero value allows only those.
type Origins struct {
	any     bool
	allowed []originPattern
}

// originPattern is one --origin entry: "host", "host:port" or
// "scheme://host[:port]". A missing scheme or port matches any.
type originPattern struct {
	scheme, host, port string
}

// NewOrigins parses a list of allowed origins: "host", "host:port" or
// "scheme://host[:port]"; "*" allows any origin.
func NewOrigins(list []string) (Origins, error) {
	var p Origins
	for _, entry := range list {
		entry = strings.TrimSpace(entry)
		switch {
		case entry == "":
			continue
		case entry == "*":
			p.any = true
			continue
		}
		pattern, err := parseOriginPattern(entry)
		if err != nil {
			return Origins{}, err
		}
		p.allowed = append(p.allowed, pattern)
	}
	return p, nil
}

func parseOriginPattern(entry string) (originPattern, error) {
	var pattern originPattern
	hostport := entry
	if scheme, rest, ok := strings.Cut(entry, "://"); ok {
		pattern.scheme = strings.ToLower(scheme)
		hostport = strings.TrimSuffix(rest, "/")
	}
	if strings.ContainsAny(hostport, "/?#@ ") || hostport == "" {
		return originPattern{}, fmt.Errorf("origin %q: want host, host:port or scheme://host[:port]", entry)
	}
	pattern.host, pattern.port = SplitHostPort(hostport)
	pattern.host = strings.ToLower(pattern.host)
	return pattern, nil
}

// Allows reports whether the handshake r may proceed. requested is the
// host[:port] the client asked for: the Host header, or what a trusted
// proxy says in X-Forwarded-Host.
func (p Origins) Allows(r *http.Request, requested string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	secure := scheme == "https" || scheme == "wss"
	if port == "" {
		port = defaultPort(secure)
	}
	if sameOrigin(requested, host, port, secure) {
		return true
	}
	for _, a := range p.allowed {
		if a.host == host && (a.scheme == "" || a.scheme == scheme) && (a.port == "" || a.port == port) {
			return true
		}
	}
	return false
}

// AllowsHost reports whether a request's Host ("host[:port]") is one the
// policy allows as an origin, whatever the scheme: "*" allows any.
func (p Origins) AllowsHost(hostport string, tls bool) bool {
	if p.any {
		return true
	}
	host, port := SplitHostPort(hostport)
	host = strings.ToLower(host)
	if port == "" {
		port = defaultPort(tls)
	}
	for _, a := range p.allowed {
		if a.host == host && (a.port == "" || a.port == port) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether the origin's host and port are those of
// requested, compared as browsers and gorilla do: the host case-insensitively,
// a missing port meaning the default port of the origin's scheme. So
// "https://dash.example.com" is the origin of "dash.example.com", as nginx
// passes the Host with proxy_set_header Host $host when TLS ends there.
func sameOrigin(requested, host, port string, secure bool) bool {
	reqHost, reqPort := SplitHostPort(requested)
	if reqPort == "" {
		reqPort = defaultPort(secure)
	}
	return strings.EqualFold(reqHost, host) && reqPort == port
}

func defaultPort(tls bool) string {
	if tls {
		return "443"
	}
	return "80"
}

// OriginHint is the log line's advice for a refused origin: how to allow it.
func OriginHint(origin string) string {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return "allow any origin with --origin='*'"
	}
	return "allow it with --origin=" + net.JoinHostPort(u.Hostname(), portOr(u.Port(), u.Scheme)) + ", or any origin with --origin='*'"
}

func portOr(port, scheme string) string {
	if port != "" {
		return port
	}
	return defaultPort(scheme == "https" || scheme == "wss")
}
