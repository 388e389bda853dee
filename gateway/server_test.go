package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/httpserver"
	"github.com/wsgate/wsgate/internal/logs"
)

// serve runs a Server for gw on ls until the test ends.
func serve(t *testing.T, gw *Gateway, ls httpserver.Listeners) *httpserver.Server {
	t.Helper()
	logger, _ := logs.New(&syncBuffer{}, "text", logs.LevelError)
	srv, err := httpserver.Listen(ls, gw, logger)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

func newGateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	cfg.Logger, _ = logs.New(&syncBuffer{}, "text", logs.LevelError)
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

func echoOnce(t *testing.T, dialer *websocket.Dialer, url string) error {
	t.Helper()
	conn, resp, err := dialer.Dial(url, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	defer conn.Close()
	send(t, conn, websocket.TextMessage, "over "+url[:strings.Index(url, ":")])
	if got := readMessageText(t, conn); !strings.HasPrefix(got, "over ") {
		t.Errorf("echo %q", got)
	}
	return nil
}

func TestUnixSocketReplacesAStaleOneAndServesAlongsideTCP(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "wsgate.sock")
	// A socket file left behind by an earlier run is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	srv := serve(t, newGateway(t, command(t, "cat")), httpserver.Listeners{Addrs: []string{"127.0.0.1:0"}, UnixSocket: sock})
	unixDialer := &websocket.Dialer{NetDial: func(string, string) (net.Conn, error) { return net.Dial("unix", sock) }}
	if err := echoOnce(t, unixDialer, "ws://localhost/"); err != nil {
		t.Errorf("over the Unix socket: %v", err)
	}
	if err := echoOnce(t, websocket.DefaultDialer, "ws://"+srv.Addrs()[0].String()+"/"); err != nil {
		t.Errorf("over TCP: %v", err)
	}
}

func TestUnixSocketRefusesToReplaceAFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := httpserver.Listen(httpserver.Listeners{UnixSocket: path}, newGateway(t, command(t, "cat")), slogDiscard())
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen = %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("the file was replaced")
	}
}

func TestRedirPortRedirectsToTheMainPort(t *testing.T) {
	t.Parallel()
	srv := serve(t, newGateway(t, command(t, "cat")), httpserver.Listeners{
		Addrs: []string{"127.0.0.1:0"}, RedirectAddrs: []string{"127.0.0.1:0"}, RedirectPort: 8443,
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + srv.RedirectAddrs()[0].String() + "/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "http://127.0.0.1:8443/path?q=1" {
		t.Errorf("redirect: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestNewNamesTheConfigFieldItCannotUse(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for field, cfg := range map[string]Config{
		"Dir":       {Dir: file},
		"CGIDir":    {Command: []string{"cat"}, CGIDir: file},
		"StaticDir": {Command: []string{"cat"}, StaticDir: file},
	} {
		cfg.Logger = slogDiscard()
		_, err := New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != field || !strings.Contains(err.Error(), "directory: ") || !strings.Contains(err.Error(), file) {
			t.Errorf("New with %s a file: %v, want a ConfigError naming the field", field, err)
		}
	}
}
