package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTrustedProxyClientTable(t *testing.T) {
	t.Parallel()
	trusted := trustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name    string
		remote  string
		headers map[string][]string
		want    client
	}{
		{name: "direct client, no headers", remote: "192.0.2.1:5000", want: client{addr: "192.0.2.1:5000", host: "gw.example"}},
		{name: "untrusted peer's headers change nothing", remote: "192.0.2.1:5000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
			want:    client{addr: "192.0.2.1:5000", host: "gw.example"}},
		{name: "trusted proxy, X-Forwarded-For", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			want:    client{addr: "203.0.113.9", host: "gw.example", proxy: "10.1.2.3:40000"}},
		{name: "rightmost untrusted address wins over what the client wrote", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.9, 10.9.9.9"}},
			want:    client{addr: "203.0.113.9", host: "gw.example", proxy: "10.1.2.3:40000"}},
		{name: "several X-Forwarded-For lines read as one list", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"6.6.6.6", "203.0.113.9"}},
			want:    client{addr: "203.0.113.9", host: "gw.example", proxy: "10.1.2.3:40000"}},
		{name: "every hop trusted: the leftmost", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"10.0.0.7, 10.0.0.8"}},
			want:    client{addr: "10.0.0.7", host: "gw.example", proxy: "10.1.2.3:40000"}},
		{name: "garbage in the rightmost hop: the peer stays", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9, unknown"}},
			want:    client{addr: "10.1.2.3:40000", host: "gw.example"}},
		{name: "X-Forwarded-Proto https", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}},
			want:    client{addr: "203.0.113.9", host: "gw.example", https: true, proxy: "10.1.2.3:40000"}},
		{name: "X-Forwarded-Proto: the nearest proxy's value", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-Proto": {"https, http"}},
			want:    client{addr: "10.1.2.3:40000", host: "gw.example"}},
		{name: "X-Forwarded-Host", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-Host": {"dash.example.com:8443"}},
			want:    client{addr: "10.1.2.3:40000", host: "dash.example.com:8443"}},
		{name: "Forwarded, with port and proto", remote: "10.1.2.3:40000",
			headers: map[string][]string{"Forwarded": {`for=6.6.6.6;proto=http, for="203.0.113.9:4711";proto=https;by=10.1.2.3`}},
			want:    client{addr: "203.0.113.9:4711", host: "gw.example", https: true, proxy: "10.1.2.3:40000"}},
		{name: "Forwarded IPv6", remote: "[::1]:40000",
			headers: map[string][]string{"Forwarded": {`for="[2001:db8::17]:4711"`}},
			want:    client{addr: "[2001:db8::17]:4711", host: "gw.example", proxy: "[::1]:40000"}},
		{name: "X-Forwarded-For wins over Forwarded", remote: "10.1.2.3:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=198.51.100.1"}},
			want:    client{addr: "203.0.113.9", host: "gw.example", proxy: "10.1.2.3:40000"}},
		{name: "Forwarded obfuscated: the peer stays", remote: "10.1.2.3:40000",
			headers: map[string][]string{"Forwarded": {"for=_hidden"}},
			want:    client{addr: "10.1.2.3:40000", host: "gw.example"}},
		{name: "IPv4-mapped proxy address is trusted", remote: "[::ffff:10.1.2.3]:40000",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			want:    client{addr: "203.0.113.9", host: "gw.example", proxy: "[::ffff:10.1.2.3]:40000"}},
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
			if got := trusted.client(r); got != c.want {
				t.Errorf("client = %+v, want %+v", got, c.want)
			}
		})
	}
}

// proxied dials the test gateway as a proxy on 127.0.0.1 would, with the
// forwarding headers given, and returns the first message.
func proxied(t *testing.T, tg *testGateway, header http.Header) string {
	t.Helper()
	conn := tg.dial(t, "/", header)
	return readMessageText(t, conn)
}

func TestTrustedProxysClientReachesTheChildAndTheAccessLog(t *testing.T) {
	t.Parallel()
	cfg := script(t, `echo "$REMOTE_ADDR|$REMOTE_PORT|$HTTPS"`)
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tg := newTestGateway(t, cfg)
	header := http.Header{"X-Forwarded-For": {"6.6.6.6, 203.0.113.9"}, "X-Forwarded-Proto": {"https"}}
	if got := proxied(t, tg, header); got != "203.0.113.9||on" {
		t.Errorf("child saw %q, want 203.0.113.9||on", got)
	}
	logs := tg.waitForLog(t, "session ended", 5*time.Second)
	if !strings.Contains(logs, "remote=203.0.113.9 proxy=127.0.0.1:") {
		t.Errorf("access line does not name the client and the proxy:\n%s", logs)
	}
}

func TestForwardingHeadersFromAnUntrustedPeerChangeNothing(t *testing.T) {
	t.Parallel()
	cfg := script(t, `echo "$REMOTE_ADDR|$HTTPS"`)
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tg := newTestGateway(t, cfg)
	header := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=198.51.100.1"}}
	if got := proxied(t, tg, header); got != "127.0.0.1|" {
		t.Errorf("child saw %q, want 127.0.0.1|", got)
	}
}

func TestTrustedProxysForwardedHostIsTheSameOrigin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		trusted string
		want    int
	}{
		{"trusted", "127.0.0.1/32", http.StatusSwitchingProtocols},
		{"untrusted", "10.0.0.0/8", http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := command(t, "cat")
			cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(c.trusted)}
			tg := newTestGateway(t, cfg)
			header := http.Header{"Origin": {"https://dash.example.com:8443"}, "X-Forwarded-Host": {"dash.example.com:8443"}}
			if got := handshakeStatus(t, tg, "/", header); got != c.want {
				t.Errorf("status %d, want %d", got, c.want)
			}
		})
	}
}

func TestHostWithoutPortIsTheSameOriginAsHTTPSWithout(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, command(t, "cat"))
	// What nginx passes with proxy_set_header Host $host, TLS ended there.
	header := http.Header{"Origin": {"https://dash.example.com"}, "Host": {"dash.example.com"}}
	if got := handshakeStatus(t, tg, "/", header); got != http.StatusSwitchingProtocols {
		t.Errorf("status %d, want 101", got)
	}
	header = http.Header{"Origin": {"https://evil.example.com"}, "Host": {"dash.example.com"}}
	if got := handshakeStatus(t, tg, "/", header); got != http.StatusForbidden {
		t.Errorf("foreign origin: status %d, want 403", got)
	}
}
