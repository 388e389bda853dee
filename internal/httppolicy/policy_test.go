package httppolicy

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSplitPathTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		path string
		want []string // nil: the path names nothing
	}{
		{"empty path names nothing", "", nil},
		{"root names nothing", "/", nil},
		{"only slashes name nothing", "///", nil},
		{"one segment", "/echo", []string{"echo"}},
		{"no leading slash", "a/b", []string{"a", "b"}},
		{"trailing slash is dropped", "/a/b/", []string{"a", "b"}},
		{"empty segments are dropped", "//a///b//", []string{"a", "b"}},
		{"dot segment refused", "/a/./b", nil},
		{"lone dot refused", "/.", nil},
		{"dot dot segment refused", "/a/../b", nil},
		{"leading dot dot refused", "/../etc/passwd", nil},
		{"trailing dot dot refused", "/a/..", nil},
		{"dot dot with trailing slash refused", "/a/../", nil},
		{"three dots is a name", "/.../a", []string{"...", "a"}},
		{"dot prefixed names are names", "/.hidden/b./..c", []string{".hidden", "b.", "..c"}},
		{"NUL inside a segment refused", "/a\x00b", nil},
		{"NUL as a segment refused", "/a/\x00/b", nil},
		{"NUL after valid segments refused", "/a/b\x00", nil},
		{"encoded slash is not split", "/a%2Fb", []string{"a%2Fb"}},
		{"backslash is not a separator", `/a\..\b`, []string{`a\..\b`}},
		{"spaces and non-ASCII kept", "/a b/ü", []string{"a b", "ü"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := splitPath(c.path)
			if (got == nil) != (c.want == nil) || !slices.Equal(got, c.want) {
				t.Errorf("splitPath(%q) = %#v, want %#v", c.path, got, c.want)
			}
		})
	}
}

func TestParseOriginPatternTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		entry   string
		want    originPattern
		wantErr bool
	}{
		{name: "host", entry: "app.example", want: originPattern{host: "app.example"}},
		{name: "host lower-cased", entry: "App.EXAMPLE", want: originPattern{host: "app.example"}},
		{name: "host and port", entry: "app.example:8443", want: originPattern{host: "app.example", port: "8443"}},
		{name: "scheme and host", entry: "https://app.example", want: originPattern{scheme: "https", host: "app.example"}},
		{name: "scheme host and port", entry: "http://app.example:8080", want: originPattern{scheme: "http", host: "app.example", port: "8080"}},
		{name: "scheme and host lower-cased", entry: "HTTPS://App.Example:8443", want: originPattern{scheme: "https", host: "app.example", port: "8443"}},
		{name: "trailing slash after scheme form dropped", entry: "https://app.example/", want: originPattern{scheme: "https", host: "app.example"}},
		{name: "trailing slash after host and port dropped", entry: "https://app.example:8443/", want: originPattern{scheme: "https", host: "app.example", port: "8443"}},
		{name: "ws scheme kept as given", entry: "ws://app.example", want: originPattern{scheme: "ws", host: "app.example"}},
		{name: "bracketed IPv6 with port", entry: "http://[::1]:8080", want: originPattern{scheme: "http", host: "::1", port: "8080"}},
		{name: "bracketed IPv6 without port", entry: "[::1]", want: originPattern{host: "::1"}},
		{name: "bare IPv6", entry: "::1", want: originPattern{host: "::1"}},
		{name: "IPv4 with port", entry: "127.0.0.1:8080", want: originPattern{host: "127.0.0.1", port: "8080"}},
		{name: "empty port matches any port", entry: "app.example:", want: originPattern{host: "app.example"}},
		{name: "non-numeric port accepted", entry: "app.example:http", want: originPattern{host: "app.example", port: "http"}},
		{name: "empty scheme is any scheme", entry: "://app.example", want: originPattern{host: "app.example"}},
		{name: "wildcard host is taken literally", entry: "*.app.example", want: originPattern{host: "*.app.example"}},
		{name: "tab inside accepted", entry: "app\t.example", want: originPattern{host: "app\t.example"}},

		{name: "empty entry refused", entry: "", wantErr: true},
		{name: "scheme without host refused", entry: "https://", wantErr: true},
		{name: "scheme with slash only refused", entry: "https:///", wantErr: true},
		{name: "two trailing slashes refused", entry: "https://app.example//", wantErr: true},
		{name: "trailing slash without scheme refused", entry: "app.example/", wantErr: true},
		{name: "path refused", entry: "http://app.example/path", wantErr: true},
		{name: "path after port refused", entry: "app.example:80/x", wantErr: true},
		{name: "query refused", entry: "app.example?x=1", wantErr: true},
		{name: "fragment refused", entry: "https://app.example#top", wantErr: true},
		{name: "userinfo refused", entry: "https://user@app.example", wantErr: true},
		{name: "userinfo with password refused", entry: "user:pw@app.example", wantErr: true},
		{name: "space inside refused", entry: "app .example", wantErr: true},
		{name: "space after scheme refused", entry: "https:// app.example", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseOriginPattern(c.entry)
			if c.wantErr {
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.entry)) {
					t.Errorf("parseOriginPattern(%q) = %+v, %v; want an error naming the entry", c.entry, got, err)
				}
				if got != (originPattern{}) {
					t.Errorf("parseOriginPattern(%q) returned %+v with its error", c.entry, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("parseOriginPattern(%q) = %+v, %v; want %+v", c.entry, got, err, c.want)
			}
		})
	}
}

func TestNewOriginPolicyTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		list    []string
		want    Origins
		wantErr bool
	}{
		{name: "no list", list: nil, want: Origins{}},
		{name: "empty entries skipped", list: []string{"", "  ", "\t"}, want: Origins{}},
		{name: "star allows any", list: []string{"*"}, want: Origins{any: true}},
		{name: "star with spaces allows any", list: []string{" * "}, want: Origins{any: true}},
		{name: "double star is a host, not any", list: []string{"**"}, want: Origins{allowed: []originPattern{{host: "**"}}}},
		{
			name: "entries trimmed and kept in order", list: []string{" b.example ", "", "https://a.example:1"},
			want: Origins{allowed: []originPattern{{host: "b.example"}, {scheme: "https", host: "a.example", port: "1"}}},
		},
		{
			name: "star alongside entries keeps both", list: []string{"a.example", "*", "b.example:2"},
			want: Origins{any: true, allowed: []originPattern{{host: "a.example"}, {host: "b.example", port: "2"}}},
		},
		{name: "bad entry after good ones is an error", list: []string{"a.example", "*", "b.example/x"}, wantErr: true},
		{name: "comma list in one entry is an error", list: []string{"a.example, b.example"}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := NewOrigins(c.list)
			if c.wantErr {
				if err == nil || !reflect.DeepEqual(got, Origins{}) {
					t.Errorf("NewOrigins(%q) = %+v, %v; want the zero policy and an error", c.list, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("NewOrigins(%q) = %+v, %v; want %+v", c.list, got, err, c.want)
			}
		})
	}
}

func TestOriginPolicyAllowsTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		list   []string
		host   string // the request's Host
		tls    bool   // the request came over TLS
		origin string // "" sends no Origin header
		want   bool
	}{
		{name: "no Origin header allowed", host: "gw.example", want: true},
		{name: "star allows another origin", list: []string{"*"}, host: "gw.example", origin: "http://evil.example", want: true},
		{name: "star allows a null origin", list: []string{"*"}, host: "gw.example", origin: "null", want: true},
		{name: "null origin refused", host: "gw.example", origin: "null", want: false},
		{name: "null origin refused for a request without Host", host: "", origin: "null", want: false},
		{name: "unparsable origin refused", host: "gw.example", origin: "http://%zz", want: false},
		{name: "origin without scheme refused even with the same host", host: "gw.example", origin: "gw.example", want: false},
		{name: "other host refused", host: "gw.example", origin: "http://evil.example", want: false},
		{name: "suffix of own host refused", host: "gw.example", origin: "http://evil-gw.example", want: false},

		{name: "same origin, default ports on both sides", host: "gw.example", origin: "http://gw.example", want: true},
		{name: "same origin, explicit port 80 in Origin", host: "gw.example", origin: "http://gw.example:80", want: true},
		{name: "same origin, explicit port 80 in Host", host: "gw.example:80", origin: "http://gw.example", want: true},
		{name: "same origin, explicit ports on both sides", host: "gw.example:8080", origin: "http://gw.example:8080", want: true},
		{name: "same origin, host case differs", host: "GW.example", origin: "http://gw.EXAMPLE", want: true},
		{name: "same host, other port refused", host: "gw.example:8080", origin: "http://gw.example:8081", want: false},
		{name: "same host, Origin port 8080 vs Host without port refused", host: "gw.example", origin: "http://gw.example:8080", want: false},
		{name: "https origin vs TLS Host without port", host: "gw.example", tls: true, origin: "https://gw.example", want: true},
		{name: "https origin vs TLS Host with port 443", host: "gw.example:443", tls: true, origin: "https://gw.example", want: true},
		{name: "https origin vs plain Host with port 443", host: "gw.example:443", origin: "https://gw.example", want: true},
		{name: "https origin vs plain Host without port (TLS ended at nginx, Host $host)", host: "gw.example", origin: "https://gw.example", want: true},
		{name: "https origin on port 8443 vs plain Host without port refused", host: "gw.example", origin: "https://gw.example:8443", want: false},
		{name: "http origin vs TLS Host without port, as gorilla compares", host: "gw.example", tls: true, origin: "http://gw.example", want: true},
		{name: "http origin on port 443 vs Host without port refused", host: "gw.example", tls: true, origin: "http://gw.example:443", want: false},
		{name: "https origin vs Host with port 80 refused", host: "gw.example:80", origin: "https://gw.example", want: false},
		{name: "wss origin defaults to 443", host: "gw.example", tls: true, origin: "wss://gw.example", want: true},
		{name: "IPv6 same origin", host: "[::1]:8080", origin: "http://[::1]:8080", want: true},
		{name: "IPv6 other port refused", host: "[::1]:8080", origin: "http://[::1]:8081", want: false},
		{name: "origin with empty host vs request without Host", host: "", origin: "http://:80", want: true},

		{name: "listed host allows any scheme and port", list: []string{"app.example"}, host: "gw.example", origin: "https://app.example:8443", want: true},
		{name: "listed host matches case-insensitively", list: []string{"App.Example"}, host: "gw.example", origin: "https://APP.example", want: true},
		{name: "listed host:port allows that port", list: []string{"app.example:8443"}, host: "gw.example", origin: "https://app.example:8443", want: true},
		{name: "listed host:port refuses another port", list: []string{"app.example:8443"}, host: "gw.example", origin: "https://app.example:9443", want: false},
		{name: "listed port 443 matches https default port", list: []string{"app.example:443"}, host: "gw.example", origin: "https://app.example", want: true},
		{name: "listed port 80 refuses https default port", list: []string{"app.example:80"}, host: "gw.example", origin: "https://app.example", want: false},
		{name: "listed scheme allows it", list: []string{"https://app.example"}, host: "gw.example", origin: "https://app.example", want: true},
		{name: "listed scheme without port allows any port", list: []string{"https://app.example"}, host: "gw.example", origin: "https://app.example:8443", want: true},
		{name: "listed scheme refuses another scheme", list: []string{"https://app.example"}, host: "gw.example", origin: "http://app.example", want: false},
		{name: "listed scheme matches case-insensitively", list: []string{"HTTPS://app.example"}, host: "gw.example", origin: "https://app.example", want: true},
		{name: "listed IPv6 allows it", list: []string{"[::1]"}, host: "gw.example", origin: "http://[::1]:3000", want: true},
		{name: "listed wildcard does not match a subdomain", list: []string{"*.app.example"}, host: "gw.example", origin: "https://www.app.example", want: false},
		{name: "listed entries do not allow others", list: []string{"a.example", "b.example"}, host: "gw.example", origin: "https://c.example", want: false},
		{name: "same origin still allowed with a list", list: []string{"app.example"}, host: "gw.example", origin: "http://gw.example", want: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewOrigins(c.list)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = c.host
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			if got := p.Allows(r, r.Host); got != c.want {
				t.Errorf("allows(Origin %q, Host %q, TLS %v) with %q = %v, want %v", c.origin, c.host, c.tls, c.list, got, c.want)
			}
		})
	}
}

func TestLoopbackHostTable(t *testing.T) {
	cases := map[string]bool{
		"localhost": true, "LOCALHOST:8080": true, "localhost.": true, "app.localhost:80": true,
		"127.0.0.1": true, "127.255.0.9:1": true, "[::1]:8080": true, "::1": true, "[::ffff:127.0.0.1]:80": true,
		"": false, "evil.example": false, "localhost.evil.example": false, "evil-localhost": false,
		"10.0.0.1:80": false, "[::2]:80": false, "0.0.0.0": false, "127.1": false, "[fe80::1%lo]:80": false,
	}
	for host, want := range cases {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestOriginPolicyAllowsHostTable(t *testing.T) {
	p, err := NewOrigins([]string{"app.example", "https://secure.example", "ported.example:8443"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host string
		tls  bool
		want bool
	}{
		{"app.example", false, true},
		{"APP.example:9999", false, true},
		{"secure.example:80", false, true}, // a Host has no scheme
		{"ported.example:8443", false, true},
		{"ported.example", true, false}, // 443
		{"ported.example:80", false, false},
		{"other.example", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		if got := p.AllowsHost(c.host, c.tls); got != c.want {
			t.Errorf("allowsHost(%q, tls %v) = %v, want %v", c.host, c.tls, got, c.want)
		}
	}
	if any, _ := NewOrigins([]string{"*"}); !any.AllowsHost("anything.example", false) {
		t.Error("--origin='*' does not allow every host")
	}
}

func TestTrustedProxyClientTable(t *testing.T) {
	t.Parallel()
	trusted := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name    string
		remote  string
		headers map[string][]string
		want    Client
	}{
		{name: "direct client, no headers", remote: "192.0.2.1:5000", want: Client{Addr: "192.0.2.1:5000", Host: "gw.example"}},
		{name: "untrusted peer's headers change nothing", remote: "192.0.2.1:5000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
			want:    Client{Addr: "192.0.2.1:5000", Host: "gw.example"}},
		{name: "trusted proxy, X-Forwarded-For", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			want:    Client{Addr: "203.0.113.9", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "rightmost untrusted address wins over what the client wrote", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.9, 10.9.9.9"}},
			want:    Client{Addr: "203.0.113.9", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "several X-Forwarded-For lines read as one list", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"6.6.6.6", "203.0.113.9"}},
			want:    Client{Addr: "203.0.113.9", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "every hop trusted: the leftmost", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"10.0.0.7, 10.0.0.8"}},
			want:    Client{Addr: "10.0.0.7", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "garbage in the rightmost hop: the peer stays", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9, unknown"}},
			want:    Client{Addr: "10.1.2.3:40000", Host: "gw.example", Forwarded: true}},
		{name: "X-Forwarded-Proto https", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}},
			want:    Client{Addr: "203.0.113.9", Host: "gw.example", HTTPS: true, Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "X-Forwarded-Proto: the nearest proxy's value", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-Proto": {"https, http"}},
			want:    Client{Addr: "10.1.2.3:40000", Host: "gw.example", Forwarded: true}},
		{name: "X-Forwarded-Host", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-Host": {"dash.example.com:8443"}},
			want:    Client{Addr: "10.1.2.3:40000", Host: "dash.example.com:8443", Forwarded: true}},
		{name: "Forwarded, with port and proto", remote: "10.1.2.3:40000",
			headers: map[string][]string{"Forwarded": {`for=6.6.6.6;proto=http, for="203.0.113.9:4711";proto=https;by=10.1.2.3`}},
			want:    Client{Addr: "203.0.113.9:4711", Host: "gw.example", HTTPS: true, Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "Forwarded IPv6", remote: "[::1]:40000",
			headers: map[string][]string{"Forwarded": {`for="[2001:db8::17]:4711"`}},
			want:    Client{Addr: "[2001:db8::17]:4711", Host: "gw.example", Proxy: "[::1]:40000", Forwarded: true}},
		{name: "X-Forwarded-For wins over Forwarded", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=198.51.100.1"}},
			want:    Client{Addr: "203.0.113.9", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "Forwarded obfuscated: the peer stays", remote: "10.1.2.3:40000",
			headers: map[string][]string{"Forwarded": {"for=_hidden"}},
			want:    Client{Addr: "10.1.2.3:40000", Host: "gw.example", Forwarded: true}},
		{name: "IPv4-mapped proxy address is trusted", remote: "[::ffff:10.1.2.3]:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			want:    Client{Addr: "203.0.113.9", Host: "gw.example", Proxy: "[::ffff:10.1.2.3]:40000", Forwarded: true}},
		{name: "trusted address without forwarding headers is a direct client", remote: "10.1.2.3:40000",
			want: Client{Addr: "10.1.2.3:40000", Host: "gw.example"}},
		{name: "a zone in X-Forwarded-For is dropped", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"fe80::1%<script>"}},
			want:    Client{Addr: "fe80::1", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "a zone in Forwarded with a port is dropped", remote: "10.1.2.3:40000",
			headers: map[string][]string{"Forwarded": {`for="[fe80::1%eth0]:4711"`}},
			want:    Client{Addr: "[fe80::1]:4711", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
		{name: "an address is written in its canonical form", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"2001:DB8:0:0::17"}},
			want:    Client{Addr: "2001:db8::17", Host: "gw.example", Proxy: "10.1.2.3:40000", Forwarded: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr, r.Host = c.remote, "gw.example"
			for k, vs := range c.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := trusted.Client(r); got != c.want {
				t.Errorf("client = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestOfferedSubprotocolsTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		values []string
		want   []string
	}{
		{"none", nil, nil},
		{"one", []string{"chat"}, []string{"chat"}},
		{"list-in-order", []string{"b, a,c"}, []string{"b", "a", "c"}},
		{"several-headers", []string{"b", "a, c"}, []string{"b", "a", "c"}},
		{"empty-elements", []string{" , a,, "}, []string{"a"}},
	}
	for _, c := range cases {
		r := &http.Request{Header: http.Header{"Sec-Websocket-Protocol": c.values}}
		if got := Offered(r); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: offeredSubprotocols = %q, want %q", c.name, got, c.want)
		}
	}
}

// routesFixture is a --dir with a script, a subdirectory, a file that is not
// executable, a symlink to a script in it and one to a script outside.
func routesFixture(t testing.TB) DirRouter {
	base := t.TempDir()
	dir := filepath.Join(base, "www")
	for name, mode := range map[string]os.FileMode{"run.sh": 0o755, "sub/inner.sh": 0o755, "plain.txt": 0o644} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "outside.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for target, link := range map[string]string{filepath.Join(base, "outside.sh"): "out.sh", filepath.Join(dir, "run.sh"): "in.sh"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	router, err := NewDirRouter(dir)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// FuzzRoutes splits URL paths and routes them through a --dir with a
// script, a subdirectory, a file that is not executable and symlinks in and
// out: no segment is "." or "..", and nothing routed lies outside the
// directory.
func FuzzRoutes(f *testing.F) {
	for _, p := range []string{"/", "/run.sh", "/run.sh/a/b", "/sub/inner.sh/x", "/../x", "/%2e%2e/x", "/out.sh", "/in.sh", "/sub/..", "/a\x00b", "//run.sh//"} {
		f.Add(p)
	}
	router := routesFixture(f)
	f.Fuzz(func(t *testing.T, urlPath string) {
		for _, seg := range splitPath(urlPath) {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\x00") {
				t.Fatalf("splitPath(%q) has segment %q", urlPath, seg)
			}
		}
		e, err := router.Route(urlPath)
		if err != nil {
			return
		}
		if !within(router.root, e.Path) {
			t.Fatalf("route(%q) = %s, outside %s", urlPath, e.Path, router.root)
		}
		if !strings.HasPrefix(e.ScriptName, "/") || e.PathInfo != "" && !strings.HasPrefix(e.PathInfo, "/") {
			t.Fatalf("route(%q): SCRIPT_NAME %q, PATH_INFO %q", urlPath, e.ScriptName, e.PathInfo)
		}
	})
}

// FuzzOriginAndHost parses an --origin entry and checks handshakes with a
// fuzzed Origin and Host against it: nothing panics; an Origin whose host
// and port are the Host's is same-origin; a Host the loopback check
// accepts is one.
func FuzzOriginAndHost(f *testing.F) {
	f.Add("app.example", "http://app.example:8080", "app.example:8080")
	f.Add("https://x.example", "https://x.example", "x.example")
	f.Add("*", "null", "evil.example")
	f.Add("[::1]:80", "http://[::1]", "[::1]")
	f.Add("a:b:c", "http://%zz", "localhost.")
	f.Fuzz(func(t *testing.T, entry, origin, host string) {
		p, err := NewOrigins([]string{entry})
		if err != nil {
			p = Origins{}
		}
		r := &http.Request{Host: host, Header: http.Header{"Origin": {origin}}}
		allowed := p.Allows(r, r.Host)
		if origin == "" && !allowed {
			t.Fatalf("no Origin refused (entry %q)", entry)
		}
		if h := strings.ToLower(host); h != "" && strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-") == "" {
			r.Header.Set("Origin", "http://"+h)
			if !p.Allows(r, r.Host) {
				t.Fatalf("same-origin handshake refused: Host %q, Origin %q", host, r.Header.Get("Origin"))
			}
		}
		_ = p.AllowsHost(host, false)
		if LoopbackHost(host) {
			name, _ := SplitHostPort(host)
			name = strings.TrimSuffix(strings.ToLower(name), ".")
			if name != "localhost" && !strings.HasSuffix(name, ".localhost") && !strings.Contains(name, ".") && !strings.Contains(name, ":") {
				t.Fatalf("LoopbackHost(%q) accepted %q", host, name)
			}
		}
		_ = HasControlChar(host)
		_ = OriginHint(origin)
	})
}

// The endpoints listed at start-up are those Route gives: executables
// under the directory, a symlink by its target, nothing outside.
func TestDirEndpointsListExecutablesAsRouteNamesThem(t *testing.T) {
	t.Parallel()
	router := routesFixture(t)
	if got := router.Endpoints(1); len(got) != 1 {
		t.Errorf("Endpoints(1) = %q, want one", got)
	}
	got := strings.Join(router.Endpoints(100), " ")
	if want := "/run.sh /sub/inner.sh"; got != want {
		t.Errorf("Endpoints() = %s, want %s", got, want)
	}
	for _, urlPath := range []string{"/run.sh", "/in.sh", "/sub/inner.sh/x"} {
		if e, err := router.Route(urlPath); err != nil || !strings.Contains(" "+got+" ", " "+e.Name+" ") {
			t.Errorf("Route(%s) = %q, %v: not among the endpoints listed", urlPath, e.Name, err)
		}
	}
}
