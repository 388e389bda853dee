package main

// Start-up errors restated in terms of the flags that caused them, each with
// the fix. The packages below main say what went wrong in their own words
// (an address, a URL, a Config field); only main knows which flag set it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/wsgate/wsgate/redisbus"
)

// privilegedPorts is the first port an unprivileged process may bind (the
// kernel's default for net.ipv4.ip_unprivileged_port_start).
const privilegedPorts = 1024

// portFlag names the flag behind the main port: "--port=8080", or
// "--port (default 80)" when it was not given.
func (c *CLI) portFlag() string {
	if c.Port != nil {
		return fmt.Sprintf("--port=%d", *c.Port)
	}
	return fmt.Sprintf("--port (default %d)", c.mainPort())
}

// listensOnTCP reports whether the main listener is TCP: a Unix socket
// alone replaces it.
func (c *CLI) listensOnTCP() bool {
	return c.UnixSocket == "" || c.Port != nil || len(c.Address) > 0
}

// validatePorts refuses two listeners on the same port and address, which
// would fail at start with "address already in use" and no word of why.
func (c *CLI) validatePorts() error {
	seen := map[string]bool{}
	for _, a := range c.Address {
		key := hostKey(a)
		if seen[key] {
			return fmt.Errorf("--address=%s is given twice: list each address once", a)
		}
		seen[key] = true
	}
	main := c.mainPort()
	if !c.listensOnTCP() || main == 0 {
		main = -1 // no fixed main port to collide with
	}
	if c.RedirPort != 0 && c.RedirPort == main {
		return fmt.Errorf("--redirport=%d is the same port as %s: give each its own port", c.RedirPort, c.portFlag())
	}
	if c.Metrics == "" {
		return nil
	}
	host, portText, _ := net.SplitHostPort(c.Metrics) // checked by validateMetrics
	port, _ := strconv.Atoi(portText)
	if port == 0 || !c.sharesAnAddressWith(host) {
		return nil
	}
	other := "9090" // a port to suggest instead
	if port == 9090 {
		other = "9091"
	}
	switch port {
	case main:
		return fmt.Errorf("--metrics=%s is the same port as %s: give metrics a port of its own, such as --metrics=%s",
			c.Metrics, c.portFlag(), net.JoinHostPort(host, other))
	case c.RedirPort:
		return fmt.Errorf("--metrics=%s is the same port as --redirport=%d: give metrics a port of its own, such as --metrics=%s",
			c.Metrics, c.RedirPort, net.JoinHostPort(host, other))
	}
	return nil
}

// sharesAnAddressWith reports whether host (of --metrics) is one of the
// addresses the main listeners bind, or overlaps them as "all interfaces".
func (c *CLI) sharesAnAddressWith(host string) bool {
	if len(c.Address) == 0 || isWildcard(host) {
		return true
	}
	for _, a := range c.Address {
		if isWildcard(a) || hostKey(a) == hostKey(host) {
			return true
		}
	}
	return false
}

// hostKey is host in a form that compares equal for the same address:
// "[::1]", "::1" and "0:0::1" alike.
func hostKey(host string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String()
	}
	return strings.ToLower(host)
}

// isWildcard reports whether host means every interface.
func isWildcard(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip, err := netip.ParseAddr(host)
	return host == "" || err == nil && ip.IsUnspecified()
}

// listenError restates an error of gateway.Listen in terms of the flag
// that named the address it could not listen on.
func (c *CLI) listenError(err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("--address=%s: %v: give an IP address, such as 127.0.0.1, or a name this machine resolves", dnsErr.Name, dnsErr.Err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		if c.UnixSocket != "" { // the Unix socket's own checks: a file in the way, a server behind it
			return fmt.Errorf("--unixsocket=%s: %w", c.UnixSocket, err)
		}
		return err
	}
	if opErr.Net == "unix" {
		return fmt.Errorf("--unixsocket=%s: %v", c.UnixSocket, opErr.Err)
	}
	addr, ok := opErr.Addr.(*net.TCPAddr)
	if !ok {
		return err
	}
	hostFlag := "--address=" + addr.IP.String()
	if c.RedirPort != 0 && addr.Port == c.RedirPort {
		return bindError(fmt.Sprintf("--redirport=%d", c.RedirPort), "--redirport", hostFlag, addr, opErr.Err)
	}
	return bindError(c.portFlag(), "--port", hostFlag, addr, opErr.Err)
}

// metricsListenError restates an error of listening on --metrics.
func (c *CLI) metricsListenError(err error) error {
	var opErr *net.OpError
	addr, ok := (*net.TCPAddr)(nil), false
	if errors.As(err, &opErr) {
		addr, ok = opErr.Addr.(*net.TCPAddr)
	}
	if !ok {
		return fmt.Errorf("--metrics=%s: %w", c.Metrics, err)
	}
	flag := "--metrics=" + c.Metrics
	return bindError(flag, "--metrics", flag, addr, opErr.Err)
}

// shownAddr is addr as ss shows it: "*:80" for every interface.
func shownAddr(addr *net.TCPAddr) string {
	if addr.IP == nil || addr.IP.IsUnspecified() {
		return fmt.Sprintf("*:%d", addr.Port)
	}
	return addr.String()
}

// bindError explains why binding addr failed and what to do about it.
// portFlag is the flag as the user gave it ("--port=80"), hostFlag the one
// that gave the address ("--address=10.0.0.1"); pick names the flag that
// picks another port.
func bindError(portFlag, pick, hostFlag string, addr *net.TCPAddr, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s: %s: address already in use: stop what listens there (ss -ltnp shows it), or choose another port with %s",
			portFlag, shownAddr(addr), pick)
	case errors.Is(err, syscall.EACCES) && addr.Port < privilegedPorts:
		return fmt.Errorf("%s: %s: permission denied: ports below %d need privilege: choose one of %d or above with %s, "+
			"or grant CAP_NET_BIND_SERVICE (AmbientCapabilities=CAP_NET_BIND_SERVICE in a systemd unit)",
			portFlag, shownAddr(addr), privilegedPorts, privilegedPorts, pick)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s: no interface of this machine has the address %s: give one it has (ip -brief address lists them)",
			hostFlag, addr.IP)
	}
	return fmt.Errorf("%s: %s: %v", portFlag, shownAddr(addr), err)
}

// commandError explains why the command cannot be run, given the error of
// exec.LookPath.
func commandError(name string, err error) error {
	info, statErr := os.Stat(name)
	if statErr == nil && info.IsDir() {
		return fmt.Errorf("command %q is a directory: serve it with --dir=%s", name, name)
	}
	var execErr *exec.Error
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("command %q cannot be run: permission denied: make it executable (chmod +x %s)", name, name)
	case !errors.As(err, &execErr) || !errors.Is(execErr.Err, exec.ErrNotFound):
		return fmt.Errorf("command %q cannot be run: %v", name, errors.Unwrap(err))
	}
	if statErr == nil && !strings.Contains(name, "/") { // a shell does not look in "." either
		return fmt.Errorf("command %q is not on PATH: to run the file in this directory, give ./%s", name, name)
	}
	return fmt.Errorf("command %q not found: give a path or a program on PATH", name)
}

// busURLError restates an error of redisbus.New about --bus with the form
// of a bus URL. A value without "@" holds no password and is shown as
// given; one without "://" too, with what was likely meant.
func busURLError(raw string, err error) error {
	const form = "want redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS), or redis+sentinel://[:PASSWORD@]SENTINEL:PORT,.../MASTER/DB"
	switch {
	case strings.Contains(raw, "@"):
		return fmt.Errorf("--bus: %w: %s", err, form) // redisbus's error hides the password
	case !strings.Contains(raw, "://"):
		return fmt.Errorf("--bus=%s: want redis://HOST:PORT/DB, such as --bus=redis://%s/0 (rediss:// for TLS)", raw, raw)
	}
	reason := strings.TrimPrefix(err.Error(), "bus URL "+redisbus.Redact(raw)+": ")
	return fmt.Errorf("--bus=%s: %s: %s", raw, reason, form)
}

// busConnectError restates a fault of the bus found at start-up, which
// retrying cannot mend (a refused password, no such database, something
// that is not Redis), naming --bus as the operator gave it, password
// hidden.
func busConnectError(raw string, err error) error {
	return fmt.Errorf("--bus=%s: %w", redisbus.Redact(raw), err)
}

// configExample is a config file, for the errors that show one.
const configExample = `{"port": 8080, "maxforks": 100}`

// configJSONError explains why data, the config file named by label, is
// not the JSON object it must be: where the JSON breaks, by line and
// column, and, when the file is written in another format, that it must be
// JSON.
func configJSONError(label string, data []byte, err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("%s: holds a JSON %s: want a JSON object keyed by flag name, such as %s", label, typeErr.Value, configExample)
	}
	where := ""
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		line, column := lineAndColumn(data, syntaxErr.Offset-1)
		where = fmt.Sprintf("line %d, column %d: ", line, column)
		err = errors.New(syntaxErr.Error() + trailingCommaHint(data, syntaxErr.Offset-1))
	}
	if format := otherFormat(label, data); format != "" {
		return fmt.Errorf("%s is %s, but the config file is JSON: write it as %s (%s%v)", label, format, configExample, where, err)
	}
	return fmt.Errorf("%s is not valid JSON: %s%v", label, where, err)
}

// lineAndColumn returns the 1-based line and column (in characters) of the
// byte at offset in data.
func lineAndColumn(data []byte, offset int64) (line, column int) {
	offset = max(0, min(offset, int64(len(data))))
	before := data[:offset]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[start:]) + 1
}

// trailingCommaHint says why a } or ] at offset is wrong, when a comma
// comes before it: the mistake JSON's own message does not name.
func trailingCommaHint(data []byte, offset int64) string {
	if offset < 0 || offset >= int64(len(data)) || (data[offset] != '}' && data[offset] != ']') {
		return ""
	}
	before := bytes.TrimRight(data[:offset], " \t\r\n")
	if len(before) == 0 || before[len(before)-1] != ',' {
		return ""
	}
	return fmt.Sprintf(" (JSON allows no comma before %c)", data[offset])
}

var (
	yamlKeyLine = regexp.MustCompile(`^[A-Za-z_][\w-]*:(\s|$)`)
	tomlKeyLine = regexp.MustCompile(`^[A-Za-z_][\w-]*\s*=`)
	tomlTable   = regexp.MustCompile(`^\[[\w.-]+\]$`)
)

// otherFormat names the format a config file that is not JSON seems to be
// written in, from its name or its first line that is not a comment: "YAML",
// "TOML", or "" for none it recognises.
func otherFormat(name string, data []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return "YAML"
	case ".toml":
		return "TOML"
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case line == "---" || yamlKeyLine.MatchString(line):
			return "YAML"
		case tomlKeyLine.MatchString(line) || tomlTable.MatchString(line):
			return "TOML"
		}
		return ""
	}
	return ""
}
