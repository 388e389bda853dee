package httppolicy

import (
	"net/http"
	"net/netip"
	"strings"
)

// Client is who a request comes from, as far as can be told: from its own
// socket, or from the forwarding headers of a trusted proxy.
type Client struct {
	// Addr is "host:port", or "host" when a proxy gave no port; the host is
	// always an IP address in its canonical form, without a zone.
	Addr string
	// Host is the host[:port] the client asked for: the Host header, or a
	// trusted proxy's X-Forwarded-Host.
	Host string
	// HTTPS says the client spoke TLS, to us or to a trusted proxy.
	HTTPS bool
	// Proxy is the trusted proxy's own address when Addr is what it said;
	// "" when the client came directly.
	Proxy string
	// Forwarded says a trusted proxy forwarded the request (it sent
	// forwarding headers): then the Host checks of a loopback-only gateway
	// are the proxy's to make.
	Forwarded bool
}

// Proxies are the addresses whose forwarding headers are believed
// (--trustedproxy).
type Proxies []netip.Prefix

// Trusts reports whether addr ("host:port" or "host") is a trusted proxy.
func (t Proxies) Trusts(addr string) bool {
	host, _ := SplitHostPort(addr)
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Client returns who r comes from. Only a connection from a trusted proxy
// that sent forwarding headers has them read; one from a trusted address
// that sent none is a direct client, like any other (a local browser on the
// proxy's own machine, say). The forwarding headers: X-Forwarded-For (else Forwarded) names
// the client, the rightmost address that is not itself a trusted proxy, so
// that what a client writes in those headers itself is never taken;
// X-Forwarded-Proto (else Forwarded's proto) says whether it spoke TLS, and
// X-Forwarded-Host which host it asked for, each as the nearest proxy set
// it (the last value).
func (t Proxies) Client(r *http.Request) Client {
	c := Client{Addr: r.RemoteAddr, Host: r.Host, HTTPS: r.TLS != nil}
	if len(t) == 0 || !t.Trusts(r.RemoteAddr) || !hasForwardingHeader(r.Header) {
		return c
	}
	c.Forwarded = true
	forwarded := parseForwarded(r.Header.Values("Forwarded"))
	if hop, ok := t.clientHop(r.Header.Values("X-Forwarded-For"), forwarded); ok {
		c.Proxy, c.Addr = r.RemoteAddr, hop.addr
		if hop.proto != "" {
			c.HTTPS = strings.EqualFold(hop.proto, "https")
		}
	}
	if proto := lastValue(r.Header.Values("X-Forwarded-Proto")); proto != "" {
		c.HTTPS = strings.EqualFold(proto, "https")
	}
	if host := lastValue(r.Header.Values("X-Forwarded-Host")); host != "" {
		c.Host = host
	}
	return c
}

// forwardingHeaders are the headers a reverse proxy adds.
var forwardingHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host"}

// hasForwardingHeader reports whether h carries any forwarding header.
func hasForwardingHeader(h http.Header) bool {
	for _, name := range forwardingHeaders {
		if len(h.Values(name)) > 0 {
			return true
		}
	}
	return false
}

// hop is one element of a forwarding header: the address a proxy received
// a request from, and the scheme it was received with ("" if not said).
type hop struct {
	addr, proto string
}

// clientHop picks the client's hop: from X-Forwarded-For if the proxies
// sent it, else from Forwarded, its address in canonical form. It reports
// false when neither names an address that can be taken.
func (t Proxies) clientHop(xff []string, forwarded []hop) (hop, bool) {
	hops := forwarded
	if len(xff) > 0 {
		hops = nil
		for _, value := range xff {
			for _, addr := range strings.Split(value, ",") {
				hops = append(hops, hop{addr: strings.TrimSpace(addr)})
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		addr, ok := canonicalHopAddr(h.addr)
		if !ok {
			return hop{}, false // "unknown", obfuscated or garbage: nothing left to believe
		}
		h.addr = addr
		if !t.Trusts(h.addr) || i == 0 {
			return h, true
		}
	}
	return hop{}, false
}

// canonicalHopAddr returns addr, an IP address with or without a port (IPv6
// in brackets when it has one), in canonical form and without a zone: a
// zone is a name the client chose ("fe80::1%<anything>"), and what is
// returned reaches REMOTE_ADDR and the logs. It reports false for anything
// else.
func canonicalHopAddr(addr string) (string, bool) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()).String(), true
	}
	ip, err := netip.ParseAddr(strings.Trim(addr, "[]"))
	if err != nil {
		return "", false
	}
	return ip.WithZone("").String(), true
}

// parseForwarded returns the hops of Forwarded header values (RFC 7239),
// in order: "for=192.0.2.60;proto=https, for=\"[2001:db8::17]:4711\"".
func parseForwarded(values []string) []hop {
	var hops []hop
	for _, value := range values {
		for _, element := range splitOutsideQuotes(value, ',') {
			var h hop
			for _, pair := range splitOutsideQuotes(element, ';') {
				key, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
				val = strings.Trim(strings.TrimSpace(val), `"`)
				switch strings.ToLower(strings.TrimSpace(key)) {
				case "for":
					h.addr = val
				case "proto":
					h.proto = val
				}
			}
			hops = append(hops, h)
		}
	}
	return hops
}

// splitOutsideQuotes splits s at every sep that is not inside double quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// lastValue is the last comma-separated value of a header's values.
func lastValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.TrimSpace(last)
}
