package httppolicy

import (
	"net"
	"strings"
)

// HasControlChar reports whether s holds a C0 control character or DEL: in
// a request path it would reach the child's environment and the logs.
func HasControlChar(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// SplitHostPort splits "host:port", "[v6]:port" or a bare host.
func SplitHostPort(hostport string) (host, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.Trim(hostport, "[]"), ""
	}
	return host, port
}

// Bracketed puts an IPv6 address in brackets, as a host in a URL has it.
func Bracketed(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}
