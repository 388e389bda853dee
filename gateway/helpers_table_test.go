package gateway

import (
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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

func TestHeaderEnvNameTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		header string
		want   string
		wantOK bool
	}{
		{"dashes become underscores", "User-Agent", "HTTP_USER_AGENT", true},
		{"several dashes", "X-Forwarded-For", "HTTP_X_FORWARDED_FOR", true},
		{"lower case is upper-cased", "x-request-id", "HTTP_X_REQUEST_ID", true},
		{"digits kept", "X-1-2", "HTTP_X_1_2", true},
		{"all digits", "123", "HTTP_123", true},
		{"lone dash", "-", "HTTP__", true},
		{"empty name dropped: no variable HTTP_", "", "", false},
		{"underscore dropped so X_A cannot pose as X-A", "X_Forwarded_For", "", false},
		{"Proxy dropped (httpoxy)", "Proxy", "", false},
		{"proxy in any case dropped", "pRoXy", "", false},
		{"Host dropped", "Host", "", false},
		{"host in lower case dropped", "host", "", false},
		{"Proxy-Authorization kept", "Proxy-Authorization", "HTTP_PROXY_AUTHORIZATION", true},
		{"X-Proxy kept", "X-Proxy", "HTTP_X_PROXY", true},
		{"Host-Name kept", "Host-Name", "HTTP_HOST_NAME", true},
		{"dashed Pro-xy is not Proxy", "Pro-xy", "HTTP_PRO_XY", true},
		{"space dropped", "X Space", "", false},
		{"dot dropped", "X.Dot", "", false},
		{"equals sign dropped", "X=1", "", false},
		{"NUL dropped", "X\x00", "", false},
		{"non-ASCII letter dropped", "X-Ñame", "", false},
		{"Kelvin sign dropped though it upper-cases to K", "\u212aey", "", false},
		{"invalid UTF-8 dropped", "X-\xff", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := headerEnvName(c.header)
			if got != c.want || ok != c.wantOK {
				t.Errorf("headerEnvName(%q) = %q, %v; want %q, %v", c.header, got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestTruncateReasonTable(t *testing.T) {
	t.Parallel()
	a := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name   string
		reason string
		want   string
	}{
		{"empty kept", "", ""},
		{"short kept", "exit status 1", "exit status 1"},
		{"122 bytes kept", a(122), a(122)},
		{"exactly 123 bytes kept", a(123), a(123)},
		{"124 bytes cut to 123", a(124), a(123)},
		{"long ASCII cut to 123", a(1000), a(123)},
		{"2-byte character ending at 123 kept", a(121) + "é" + "b", a(121) + "é"},
		{"2-byte character across the cut dropped whole", a(122) + "é", a(122)},
		{"3-byte character ending at 123 kept", a(120) + "€" + "b", a(120) + "€"},
		{"3-byte character one byte over dropped whole", a(121) + "€", a(121)},
		{"3-byte character two bytes over dropped whole", a(122) + "€", a(122)},
		{"4-byte character over the cut dropped whole", a(120) + "😀", a(120)},
		{"4-byte character ending at 123 kept", a(119) + "😀" + "b", a(119) + "😀"},
		{"4-byte characters only", strings.Repeat("😀", 40), strings.Repeat("😀", 30)},
		{"multi-byte text of exactly 123 bytes kept", strings.Repeat("€", 41), strings.Repeat("€", 41)},
		{"continuation bytes only cut to nothing", strings.Repeat("\x80", 200), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := truncateReason(c.reason)
			if got != c.want {
				t.Errorf("truncateReason(%d bytes) = %q (%d bytes), want %q (%d bytes)", len(c.reason), got, len(got), c.want, len(c.want))
			}
			if len(got) > 123 || !strings.HasPrefix(c.reason, got) || utf8.ValidString(c.reason) && !utf8.ValidString(got) {
				t.Errorf("truncateReason(%d bytes) = %q: not a valid prefix of at most 123 bytes", len(c.reason), got)
			}
		})
	}
}

// sameArray reports whether a and b share their first element.
func sameArray(a, b []byte) bool {
	if cap(a) == 0 || cap(b) == 0 {
		return cap(a) == cap(b)
	}
	return &a[:1][0] == &b[:1][0]
}

func TestValidTextTable(t *testing.T) {
	t.Parallel()
	const r = "\uFFFD"
	cases := []struct {
		name         string
		scratch      []byte
		prior        string // validated first with scratch; its scratch is then used
		text         string
		want         string
		wantReplaced bool
		wantScratch  bool // the result is built in scratch's array
	}{
		{name: "empty is valid", text: "", want: ""},
		{name: "ASCII is valid", text: "hello", want: "hello"},
		{name: "multi-byte is valid", text: "héllo €😀", want: "héllo €😀"},
		{name: "literal U+FFFD is valid", text: r, want: r},
		{name: "NUL is valid", text: "a\x00b", want: "a\x00b"},
		{name: "lone invalid byte", text: "\xff", want: r, wantReplaced: true},
		{name: "invalid byte between text", text: "a\xffb", want: "a" + r + "b", wantReplaced: true},
		{name: "lone continuation byte", text: "a\x80b", want: "a" + r + "b", wantReplaced: true},
		{name: "truncated 2-byte character at the end", text: "abc\xc3", want: "abc" + r, wantReplaced: true},
		{name: "truncated 3-byte character gives one U+FFFD per byte", text: "abc\xe2\x82", want: "abc" + r + r, wantReplaced: true},
		{name: "truncated 4-byte character in the middle", text: "a\xf0\x9f\x98b", want: "a" + r + r + r + "b", wantReplaced: true},
		{name: "overlong NUL", text: "\xc0\x80", want: r + r, wantReplaced: true},
		{name: "UTF-16 surrogate", text: "\xed\xa0\x80", want: r + r + r, wantReplaced: true},
		{name: "above U+10FFFF", text: "\xf4\x90\x80\x80", want: r + r + r + r, wantReplaced: true},
		{name: "valid characters around invalid kept", text: "é\xffé", want: "é" + r + "é", wantReplaced: true},
		{name: "literal U+FFFD next to invalid byte", text: r + "\xff", want: r + r, wantReplaced: true},
		{
			name: "built in roomy scratch over stale bytes", scratch: append(make([]byte, 0, 64), "stale"...),
			text: "a\xffb", want: "a" + r + "b", wantReplaced: true, wantScratch: true,
		},
		{
			name: "small scratch grows", scratch: make([]byte, 0, 2),
			text: "abc\xff", want: "abc" + r, wantReplaced: true,
		},
		{
			name: "valid text leaves scratch alone", scratch: append(make([]byte, 0, 64), "stale"...),
			text: "fine", want: "fine",
		},
		{
			name: "scratch from a previous call is reused", prior: strings.Repeat("x\xff", 20),
			text: "y\xff", want: "y" + r, wantReplaced: true, wantScratch: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			scratch := c.scratch
			if c.prior != "" {
				var replaced bool
				_, scratch, replaced = validText([]byte(c.prior), scratch)
				if !replaced {
					t.Fatalf("set-up: prior %q needed no replacement", c.prior)
				}
			}
			text := []byte(c.text)
			got, gotScratch, replaced := validText(text, scratch)
			if string(got) != c.want || replaced != c.wantReplaced {
				t.Errorf("validText(%q) = %q, %v; want %q, %v", c.text, got, replaced, c.want, c.wantReplaced)
			}
			if !replaced {
				if len(got) > 0 && !sameArray(got, text) {
					t.Errorf("valid text was copied")
				}
				if !sameArray(gotScratch, scratch) || len(gotScratch) != len(scratch) {
					t.Errorf("scratch changed for valid text: %q", gotScratch)
				}
				return
			}
			if !sameArray(gotScratch, got) || len(gotScratch) != len(got) {
				t.Errorf("returned scratch %q is not the result %q", gotScratch, got)
			}
			if inScratch := sameArray(got, scratch); inScratch != c.wantScratch {
				t.Errorf("result built in the given scratch: %v, want %v", inScratch, c.wantScratch)
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
		want    originPolicy
		wantErr bool
	}{
		{name: "no list", list: nil, want: originPolicy{}},
		{name: "empty entries skipped", list: []string{"", "  ", "\t"}, want: originPolicy{}},
		{name: "star allows any", list: []string{"*"}, want: originPolicy{any: true}},
		{name: "star with spaces allows any", list: []string{" * "}, want: originPolicy{any: true}},
		{name: "double star is a host, not any", list: []string{"**"}, want: originPolicy{allowed: []originPattern{{host: "**"}}}},
		{
			name: "entries trimmed and kept in order", list: []string{" b.example ", "", "https://a.example:1"},
			want: originPolicy{allowed: []originPattern{{host: "b.example"}, {scheme: "https", host: "a.example", port: "1"}}},
		},
		{
			name: "star alongside entries keeps both", list: []string{"a.example", "*", "b.example:2"},
			want: originPolicy{any: true, allowed: []originPattern{{host: "a.example"}, {host: "b.example", port: "2"}}},
		},
		{name: "bad entry after good ones is an error", list: []string{"a.example", "*", "b.example/x"}, wantErr: true},
		{name: "comma list in one entry is an error", list: []string{"a.example, b.example"}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := newOriginPolicy(c.list)
			if c.wantErr {
				if err == nil || !reflect.DeepEqual(got, originPolicy{}) {
					t.Errorf("newOriginPolicy(%q) = %+v, %v; want the zero policy and an error", c.list, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("newOriginPolicy(%q) = %+v, %v; want %+v", c.list, got, err, c.want)
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
			p, err := newOriginPolicy(c.list)
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
			if got := p.allows(r, r.Host); got != c.want {
				t.Errorf("allows(Origin %q, Host %q, TLS %v) with %q = %v, want %v", c.origin, c.host, c.tls, c.list, got, c.want)
			}
		})
	}
}

func TestRuneCutTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		want int
	}{
		{"empty", "", 0},
		{"ASCII whole", "abc", 3},
		{"whole 2-byte character", "a\xc3\xa9", 3},
		{"first byte of a 2-byte character held back", "a\xc3", 1},
		{"whole 3-byte character", "a\xe2\x82\xac", 4},
		{"two bytes of a 3-byte character held back", "a\xe2\x82", 1},
		{"one byte of a 3-byte character held back", "a\xe2", 1},
		{"whole 4-byte character", "\xf0\x9f\x98\x80", 4},
		{"three bytes of a 4-byte character held back", "\xf0\x9f\x98", 0},
		{"incomplete character after a whole one", "\xe2\x82\xac\xe2", 3},
		{"lone continuation byte kept", "a\x80", 2},
		{"invalid byte kept", "a\xff", 2},
		{"invalid second byte kept", "\xe0\x80", 2},
		{"surrogate lead kept as not incomplete", "\xed\xa0", 2},
		{"above U+10FFFF lead kept as not incomplete", "\xf4\x90", 2},
		{"start byte followed by ASCII kept", "\xc3a", 2},
		{"more than 4 continuation bytes kept", "\x80\x80\x80\x80\x80", 5},
		{"invalid lead and continuation bytes kept", "\xf0\x80\x80\x80\x80", 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := runeCut([]byte(c.data)); got != c.want {
				t.Errorf("runeCut(%q) = %d, want %d", c.data, got, c.want)
			}
		})
	}
}

func TestSafeCutTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		want int
	}{
		{"empty", "", 0},
		{"plain text all sent", "abc", 3},
		{"trailing CR held back", "abc\r", 3},
		{"lone CR held back", "\r", 0},
		{"only the last of two CRs held back", "abc\r\r", 4},
		{"CR inside sent", "a\rb", 3},
		{"CR LF at the end sent", "abc\r\n", 5},
		{"incomplete character held back", "ab\xc3", 2},
		{"CR before an incomplete character held back too", "ab\r\xc3", 2},
		{"CR before an incomplete 3-byte character held back too", "\r\xe2\x82", 0},
		{"complete character after CR sent", "ab\r\xc3\xa9", 5},
		{"invalid trailing byte sent", "ab\xff", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := safeCut([]byte(c.data)); got != c.want {
				t.Errorf("safeCut(%q) = %d, want %d", c.data, got, c.want)
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
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestOriginPolicyAllowsHostTable(t *testing.T) {
	p, err := newOriginPolicy([]string{"app.example", "https://secure.example", "ported.example:8443"})
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
		if got := p.allowsHost(c.host, c.tls); got != c.want {
			t.Errorf("allowsHost(%q, tls %v) = %v, want %v", c.host, c.tls, got, c.want)
		}
	}
	if any, _ := newOriginPolicy([]string{"*"}); !any.allowsHost("anything.example", false) {
		t.Error("--origin='*' does not allow every host")
	}
}
