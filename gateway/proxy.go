package gateway

import (
	"net/http"
	"net/netip"
	"strings"
)

// client is who a handshake comes from, as far as the gateway can tell: from
// its own socket, or from the forwarding headers of a trusted proxy.
type client struct {
	addr  string // "host:port", or "host" when a proxy gave no port
	host  string // the host[:port] the client asked for: Host, or a trusted proxy's X-Forwarded-Host
	https bool   // the client spoke TLS, to us or to a trusted proxy
	proxy string // the trusted proxy's own address; "" when the client came directly
}

// trustedProxies are the addresses whose forwarding headers are believed.
type trustedProxies []netip.Prefix

// trusts reports whether addr ("host:port" or "host") is a trusted proxy.
func (t trustedProxies) trusts(addr string) bool {
	host, _ := splitHostPort(addr)
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

// client returns who r comes from. Only a connection from a trusted proxy
// has its forwarding headers read: X-Forwarded-For (else Forwarded) names
// the client, the rightmost address that is not itself a trusted proxy, so
// that what a client writes in those headers itself is never taken;
// X-Forwarded-Proto (else Forwarded's proto) says whether it spoke TLS, and
// X-Forwarded-Host which host it asked for, each as the nearest proxy set
// it (the last value).
func (t trustedProxies) client(r *http.Request) client {
	c := client{addr: r.RemoteAddr, host: r.Host, https: r.TLS != nil}
	if len(t) == 0 || !t.trusts(r.RemoteAddr) {
		return c
	}
	forwarded := parseForwarded(r.Header.Values("Forwarded"))
	if hop, ok := t.clientHop(r.Header.Values("X-Forwarded-For"), forwarded); ok {
		c.proxy, c.addr = r.RemoteAddr, hop.addr
		if hop.proto != "" {
			c.https = strings.EqualFold(hop.proto, "https")
		}
	}
	if proto := lastValue(r.Header.Values("X-Forwarded-Proto")); proto != "" {
		c.https = strings.EqualFold(proto, "https")
	}
	if host := lastValue(r.Header.Values("X-Forwarded-Host")); host != "" {
		c.host = host
	}
	return c
}

// hop is one element of a forwarding header: the address a proxy received
// a request from, and the scheme it was received with ("" if not said).
type hop struct {
	addr, proto string
}

// clientHop picks the client's hop: from X-Forwarded-For if the proxies
// sent it, else from Forwarded. It reports false when neither names an
// address that can be taken.
func (t trustedProxies) clientHop(xff []string, forwarded []hop) (hop, bool) {
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
		if !validHopAddr(h.addr) {
			return hop{}, false // "unknown", obfuscated or garbage: nothing left to believe
		}
		if !t.trusts(h.addr) || i == 0 {
			return h, true
		}
	}
	return hop{}, false
}

// validHopAddr reports whether addr is an IP address, with or without a
// port, IPv6 in brackets when it has one.
func validHopAddr(addr string) bool {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().IsValid()
	}
	_, err := netip.ParseAddr(strings.Trim(addr, "[]"))
	return err == nil
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
