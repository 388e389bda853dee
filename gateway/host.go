package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hostAllowed reports whether a request may reach the gateway under the
// Host it names. When every listener is on loopback (Config.LoopbackOnly),
// only loopback names and addresses may, and the hosts the origin policy
// allows: otherwise a page whose name an attacker points at 127.0.0.1 (DNS
// rebinding) is same-origin with itself and could drive a local gateway,
// or read what its plain HTTP side serves. A request from a trusted reverse
// proxy may, too: the proxy asked for the public name.
func (g *Gateway) hostAllowed(r *http.Request) bool {
	if !g.cfg.LoopbackOnly || g.proxies.trusts(r.RemoteAddr) {
		return true // a trusted proxy passes on the public name it was asked for
	}
	return loopbackHost(r.Host) || g.origins.allowsHost(r.Host, r.TLS != nil)
}

// refuseHost answers a request whose Host is not allowed, with a log line
// that says how to allow it.
func (g *Gateway) refuseHost(w http.ResponseWriter, r *http.Request, upgrade bool) {
	msg := "request refused: host not allowed"
	if upgrade {
		msg = "handshake refused: host not allowed"
		g.observe.HandshakeRefused(RefusedOrigin) // the same kind of refusal, one step earlier
	}
	host, _ := splitHostPort(r.Host)
	g.log.Info(msg, "remote", r.RemoteAddr, "path", r.URL.EscapedPath(), "host", r.Host,
		"hint", "every listener is on loopback; allow this host with --origin="+bracketed(host)+", or its proxy with --trustedproxy")
	http.Error(w, "host not allowed", http.StatusForbidden)
}

// bracketed puts an IPv6 address in brackets, as a host in a URL has it.
func bracketed(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// loopbackHost reports whether a Host header (a name or an address, with
// or without a port) names this machine's loopback interface: localhost or
// a name under .localhost (RFC 6761: clients resolve those themselves,
// never through DNS), 127.0.0.0/8 or ::1.
func loopbackHost(hostport string) bool {
	host, _ := splitHostPort(hostport)
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// LoopbackAddr reports whether a listening address ("host:port", with the
// host a name or an address) is on loopback only: an address in
// 127.0.0.0/8 or ::1, or localhost. An empty host listens on every
// interface.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
