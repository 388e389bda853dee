// Package fairness keeps one client address from taking what is meant for
// all: a token bucket of handshakes per address (RateLimiter) and a count of
// open connections per address (Counter). An address is an IPv4 address, or
// an IPv6 /64, the block one subscriber is usually given, so that an IPv6
// client cannot step around a limit by changing its interface identifier.
//
// Both are safe for concurrent use and bounded in memory: the limiter's
// table by a maximum number of addresses, the counter by the connections
// open. The package uses only the standard library and knows nothing of
// HTTP.
package fairness

import (
	"net/netip"
	"strings"
)

// ipv6Block is the prefix length an IPv6 address is counted under.
const ipv6Block = 64

// Key is the address a client is counted under: its IPv4 address, or the
// /64 of its IPv6 address. The zero Key stands for every client whose
// address is not an IP address (a Unix socket's peer).
type Key struct{ prefix netip.Prefix }

// KeyOf returns the Key of addr, "host:port" or "host", as
// httppolicy.Client.Addr holds it. An IPv4 address mapped into IPv6 counts
// as the IPv4 address.
func KeyOf(addr string) Key {
	host := addr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		host = ap.Addr().String()
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return Key{}
	}
	ip = ip.Unmap().WithZone("")
	bits := ip.BitLen()
	if ip.Is6() {
		bits = ipv6Block
	}
	prefix, _ := ip.Prefix(bits)
	return Key{prefix: prefix}
}

// String is the address or block the key stands for, for logs.
func (k Key) String() string {
	if !k.prefix.IsValid() {
		return "non-IP peers"
	}
	if k.prefix.Addr().Is4() {
		return k.prefix.Addr().String()
	}
	return k.prefix.String()
}
