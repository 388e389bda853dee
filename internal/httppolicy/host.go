package httppolicy

import (
	"net"
	"net/netip"
	"strings"
)

// LoopbackHost reports whether a Host header (a name or an address, with or
// without a port) names this machine's loopback interface: localhost or a
// name under .localhost (RFC 6761: clients resolve those themselves, never
// through DNS), 127.0.0.0/8 or ::1.
func LoopbackHost(hostport string) bool {
	host, _ := SplitHostPort(hostport)
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

// HostHint is the advice logged with a refused Host: how to allow it.
func HostHint(hostport string) string {
	host, _ := SplitHostPort(hostport)
	return "every listener is on loopback; allow this host with --origin=" + Bracketed(host) + ", or its proxy with --trustedproxy"
}
