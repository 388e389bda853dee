package gateway

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

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
