package cgienv

import (
	"strings"
	"testing"
)

// FuzzHeaderEnvName maps header names to variables: a name it keeps gives
// HTTP_ and upper-case letters, digits and underscores, never HTTP_PROXY
// nor HTTP_HOST, and only names of letters, digits and '-' are kept.
func FuzzHeaderEnvName(f *testing.F) {
	for _, name := range []string{"Accept", "X-Forwarded-For", "Proxy", "host", "X_Y", "Ü", "a b", ""} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		env, ok := HeaderEnvName(name)
		if !ok {
			return
		}
		rest, found := strings.CutPrefix(env, "HTTP_")
		if !found || rest == "" || rest == "PROXY" || rest == "HOST" || strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			t.Fatalf("HeaderEnvName(%q) = %q", name, env)
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			t.Fatalf("HeaderEnvName(%q) kept a name with other characters", name)
		}
	})
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
			got, ok := HeaderEnvName(c.header)
			if got != c.want || ok != c.wantOK {
				t.Errorf("HeaderEnvName(%q) = %q, %v; want %q, %v", c.header, got, ok, c.want, c.wantOK)
			}
		})
	}
}
