package gateway

// Fuzz targets for everything that parses what a client sends. Each has a
// seed corpus under testdata/fuzz/<name>; scripts/test runs each for a few
// seconds: go test -run '^$' -fuzz='^FuzzName$' -fuzztime=3s ./gateway

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
		env, ok := headerEnvName(name)
		if !ok {
			return
		}
		rest, found := strings.CutPrefix(env, "HTTP_")
		if !found || rest == "" || rest == "PROXY" || rest == "HOST" || strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			t.Fatalf("headerEnvName(%q) = %q", name, env)
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			t.Fatalf("headerEnvName(%q) kept a name with other characters", name)
		}
	})
}
