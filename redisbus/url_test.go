package redisbus

import (
	"context"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testrun"
)

func TestBusURLErrorsAndRedactionNeverShowThePassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-pw"
	for _, tc := range []struct {
		url, wantErr string
	}{
		{"redis://:" + secret + "@127.0.0.1:notaport/0", "cannot parse"},
		{"http://:" + secret + "@127.0.0.1:6379/0", "want redis:// or rediss://"},
		{"redis://:" + secret + "@127.0.0.1:6379/zero", "invalid database"},
		{"redis://:" + secret + "@127.0.0.1:6379/0/1", "invalid URL path"},
		{"redis://:" + secret + "@/0", "no host"},
		{"redis://user:" + secret + "@127.0.0.1:6379/0?dial_timeout=x", "dial_timeout"},
	} {
		_, err := New(Options{URL: tc.url})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("New(%q): %v, want an error saying %q", Redact(tc.url), err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("New(%q): the error shows the password: %v", Redact(tc.url), err)
		}
	}
	for raw, want := range map[string]string{
		"redis://:" + secret + "@10.0.0.1:6379/2":         "redis://:xxxxx@10.0.0.1:6379/2",
		"rediss://ops:" + secret + "@redis.internal/0":    "rediss://ops:xxxxx@redis.internal/0",
		"redis://10.0.0.1/0?password=" + secret:           "redis://10.0.0.1/0",
		"redis://10.0.0.1:6379":                           "redis://10.0.0.1:6379",
		"redis://:" + secret + "@10.0.0.1:bad%zz/0":       "(unparsable URL)",
		"rediss://:" + secret + "@[::1]:6380/0#" + secret: "rediss://:xxxxx@[::1]:6380/0",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact gives %q, want %q", got, want)
		}
	}
}

func TestAPasswordInTheURLAuthenticatesAndNeverReachesTheLogs(t *testing.T) {
	t.Parallel()
	const secret = "pw-1b7f0c"
	srv := testrun.StartRedis(t, "--requirepass", secret)
	url := "redis://:" + secret + "@" + srv.Addr() + "/3"
	p, _ := attach(t, url, "/feed", 0)
	leaderOf(t, p)
	if n := rawClient(t, url).Exists(context.Background(), keysFor("/feed").lease).Val(); n != 1 {
		t.Error("the lease is not in database 3")
	}

	wrong := "redis://:not-" + secret + "@" + srv.Addr() + "/3"
	b, logged := newBus(t, wrong, 0)
	_, _, err := b.Attach(context.Background(), "/feed", &recorder{})
	if err == nil {
		t.Fatal("attached with a wrong password")
	}
	t.Logf("with a wrong password: %v", err)
	for _, text := range []string{err.Error(), logged.String(), p.logs.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the password shows in %q", text)
		}
	}
}
