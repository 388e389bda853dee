package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuthFlagsThatNeedOthersAreErrors(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"--jwtaudience, --jwtissuer and --jwtcookie need --jwtkey": {"--jwtaudience=x", "cat"},
		"--userheader=X-User needs --trustedproxy":                 {"--userheader=X-User", "cat"},
		`--userheader="X User" is not a header name`:               {"--userheader=X User", "--trustedproxy=127.0.0.1", "cat"},
		"--userheader cannot be Authorization":                     {"--userheader=authorization", "--trustedproxy=127.0.0.1", "cat"},
		"--authtimeout=0s must be positive":                        {"--authtimeout=0", "cat"},
		"--maxconnsperip=-1 is negative":                           {"--maxconnsperip=-1", "cat"},
		"--ratelimit=-2 is negative":                               {"--ratelimit=-2", "cat"},
		"--maxlifetime=-1s is negative":                            {"--maxlifetime=-1s", "cat"},
		"--idletimeout=-1m0s is negative":                          {"--idletimeout=-1m", "cat"},
	}
	for want, args := range cases {
		cli, err := parseCLI(args)
		if err == nil {
			err = cli.validate()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err = %v, want %q", args, err, want)
		}
	}
}

func TestDurationsAreGoDurations(t *testing.T) {
	t.Parallel()
	cli, err := parseCLI([]string{"--maxlifetime=8h", "--idletimeout=90s", "--authtimeout=2s", "--ratelimit=0.5", "cat"})
	if err != nil {
		t.Fatal(err)
	}
	if cli.MaxLifetime != 8*time.Hour || cli.IdleTimeout != 90*time.Second || cli.AuthTimeout != 2*time.Second || cli.RateLimit != 0.5 {
		t.Fatalf("parsed %v %v %v %v", cli.MaxLifetime, cli.IdleTimeout, cli.AuthTimeout, cli.RateLimit)
	}
	cfg, err := cli.gatewayConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxLifetime != 8*time.Hour || cfg.IdleTimeout != 90*time.Second || cfg.RateLimit != 0.5 {
		t.Fatalf("config %v %v %v", cfg.MaxLifetime, cfg.IdleTimeout, cfg.RateLimit)
	}
}

// Start-up errors about the files name the flag, the file, the line, and
// the fix.
func TestAuthFilesThatCannotBeUsedAreNamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	md5 := file("md5", "# users\nalice:$apr1$abcdefgh$0123456789abcdefghijkl\n")
	empty := file("empty", "# nobody yet\n")
	short := file("short", "secret\n")
	cases := map[string][]string{
		"--basicauth: " + md5 + `: line 2: user "alice": an MD5 hash ($apr1$), not bcrypt: write the entry with htpasswd -B`: {"--basicauth=" + md5},
		"--basicauth: " + empty + " names no user: add one with htpasswd -B":                                                 {"--basicauth=" + empty},
		"--basicauth: open " + filepath.Join(dir, "missing"):                                                                 {"--basicauth=" + filepath.Join(dir, "missing")},
		"--jwtkey: " + short + ": the HMAC secret is 6 bytes: HS256 needs 32 at least":                                       {"--jwtkey=" + short},
		`--authcmd: "no-such-authcmd" cannot be run`:                                                                         {"--authcmd=no-such-authcmd"},
	}
	for want, args := range cases {
		cli, err := parseCLI(append(args, "cat"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.authMethods(slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err = %v, want %q", args, err, want)
		}
	}
}

// The new flags come from WSGATE_ variables and the --config file as every
// other flag does, durations as Go durations.
func TestAuthFlagsFromTheEnvironmentAndTheConfigFile(t *testing.T) { // not parallel: t.Setenv
	config := filepath.Join(t.TempDir(), "wsgate.json")
	if err := os.WriteFile(config, []byte(`{"basicauth": "/etc/wsgate/users", "maxlifetime": "8h", "ratelimit": 2,
		"maxconnsperip": 4, "jwtkey": "/etc/wsgate/jwt.pem", "jwtaudience": "dash", "userheader": "X-Auth-Request-User"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WSGATE_IDLETIMEOUT", "10m")
	t.Setenv("WSGATE_RATELIMIT", "5")
	t.Setenv("WSGATE_AUTHCMD", "/usr/local/bin/allow")
	cli, err := parseCLI([]string{"--config=" + config, "--maxconnsperip=3", "cat"})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cli.BasicAuth, cli.MaxLifetime, cli.RateLimit, cli.MaxConnsPerIP, cli.JWTKey, cli.JWTAudience, cli.UserHeader, cli.IdleTimeout, cli.AuthCmd}
	want := []any{"/etc/wsgate/users", 8 * time.Hour, 5.0, 3, "/etc/wsgate/jwt.pem", "dash", "X-Auth-Request-User", 10 * time.Minute, "/usr/local/bin/allow"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("value %d: %v, want %v", i, got[i], want[i])
		}
	}
}
