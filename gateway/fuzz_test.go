package gateway

// Fuzz targets for everything that parses what a client sends. Each has a
// seed corpus under testdata/fuzz/<name>; scripts/test runs each for a few
// seconds: go test -run '^$' -fuzz='^FuzzName$' -fuzztime=3s ./gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRoutes splits URL paths and routes them through a --dir with a
// script, a subdirectory, a file that is not executable and symlinks in and
// out: no segment is "." or "..", and nothing routed lies outside the
// directory.
func FuzzRoutes(f *testing.F) {
	for _, p := range []string{"/", "/run.sh", "/run.sh/a/b", "/sub/inner.sh/x", "/../x", "/%2e%2e/x", "/out.sh", "/in.sh", "/sub/..", "/a\x00b", "//run.sh//"} {
		f.Add(p)
	}
	base := f.TempDir()
	dir := filepath.Join(base, "www")
	for name, mode := range map[string]os.FileMode{"run.sh": 0o755, "sub/inner.sh": 0o755, "plain.txt": 0o644} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "outside.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		f.Fatal(err)
	}
	_ = os.Symlink(filepath.Join(base, "outside.sh"), filepath.Join(dir, "out.sh"))
	_ = os.Symlink(filepath.Join(dir, "run.sh"), filepath.Join(dir, "in.sh"))
	router, err := newDirRouter(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, urlPath string) {
		for _, seg := range splitPath(urlPath) {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\x00") {
				t.Fatalf("splitPath(%q) has segment %q", urlPath, seg)
			}
		}
		e, err := router.route(urlPath)
		if err != nil {
			return
		}
		if !within(router.root, e.path) {
			t.Fatalf("route(%q) = %s, outside %s", urlPath, e.path, router.root)
		}
		if !strings.HasPrefix(e.scriptName, "/") || e.pathInfo != "" && !strings.HasPrefix(e.pathInfo, "/") {
			t.Fatalf("route(%q): SCRIPT_NAME %q, PATH_INFO %q", urlPath, e.scriptName, e.pathInfo)
		}
	})
}

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
		p, err := newOriginPolicy([]string{entry})
		if err != nil {
			p = originPolicy{}
		}
		r := &http.Request{Host: host, Header: http.Header{"Origin": {origin}}}
		allowed := p.allows(r, r.Host)
		if origin == "" && !allowed {
			t.Fatalf("no Origin refused (entry %q)", entry)
		}
		if h := strings.ToLower(host); h != "" && strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-") == "" {
			r.Header.Set("Origin", "http://"+h)
			if !p.allows(r, r.Host) {
				t.Fatalf("same-origin handshake refused: Host %q, Origin %q", host, r.Header.Get("Origin"))
			}
		}
		_ = p.allowsHost(host, false)
		if loopbackHost(host) {
			name, _ := splitHostPort(host)
			name = strings.TrimSuffix(strings.ToLower(name), ".")
			if name != "localhost" && !strings.HasSuffix(name, ".localhost") && !strings.Contains(name, ".") && !strings.Contains(name, ":") {
				t.Fatalf("loopbackHost(%q) accepted %q", host, name)
			}
		}
		_ = hasControlChar(host)
		_ = refusalHint(origin)
	})
}
