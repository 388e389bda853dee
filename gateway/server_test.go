package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/logs"
)

// serve runs a Server for gw on ls until the test ends.
func serve(t *testing.T, gw *Gateway, ls Listeners) *Server {
	t.Helper()
	logger, _ := logs.New(&syncBuffer{}, "text", logs.LevelError)
	srv, err := Listen(ls, gw, logger)
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

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                           string
	caPool                        *x509.CertPool
	clientCert                    tls.Certificate
	serverCert, serverKey, caFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), caPool: x509.NewCertPool()}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.caPool.AddCert(ca)
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", caDER)

	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	serverDER, serverKey := leaf(2, x509.ExtKeyUsageServerAuth)
	p.serverCert = p.writePEM(t, "server.pem", "CERTIFICATE", serverDER)
	keyDER, _ := x509.MarshalECPrivateKey(serverKey)
	p.serverKey = p.writePEM(t, "server-key.pem", "EC PRIVATE KEY", keyDER)
	clientDER, clientKey := leaf(3, x509.ExtKeyUsageClientAuth)
	p.clientCert = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	return p
}

func (p *testPKI) writePEM(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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

func TestTLSServesWSSWithTLS12OrLater(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tlsCfg, err := TLSConfig(pki.serverCert, pki.serverKey, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, newGateway(t, command(t, "cat")), Listeners{Addrs: []string{"127.0.0.1:0"}, TLS: tlsCfg})
	url := "wss://" + srv.Addrs()[0].String() + "/"
	dialer := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pki.caPool}}
	if err := echoOnce(t, dialer, url); err != nil {
		t.Fatalf("wss: %v", err)
	}
	old := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pki.caPool, MaxVersion: tls.VersionTLS11}}
	if err := echoOnce(t, old, url); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}

func TestTLSWithCARequiresClientCertificates(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tlsCfg, err := TLSConfig(pki.serverCert, pki.serverKey, pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, newGateway(t, command(t, "cat")), Listeners{Addrs: []string{"127.0.0.1:0"}, TLS: tlsCfg})
	url := "wss://" + srv.Addrs()[0].String() + "/"
	anonymous := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pki.caPool}}
	if err := echoOnce(t, anonymous, url); err == nil {
		t.Error("a client without a certificate was served")
	}
	withCert := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.clientCert}}}
	if err := echoOnce(t, withCert, url); err != nil {
		t.Errorf("a client with a certificate: %v", err)
	}
}

func TestTLSConfigErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	if _, err := TLSConfig("/nonexistent.pem", pki.serverKey, ""); err == nil || !strings.Contains(err.Error(), "--sslcert") {
		t.Errorf("missing cert: %v", err)
	}
	if _, err := TLSConfig(pki.serverCert, pki.serverKey, pki.serverKey); err == nil || !strings.Contains(err.Error(), "--sslca") {
		t.Errorf("CA file without certificates: %v", err)
	}
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
	srv := serve(t, newGateway(t, command(t, "cat")), Listeners{Addrs: []string{"127.0.0.1:0"}, UnixSocket: sock})
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
	_, err := Listen(Listeners{UnixSocket: path}, newGateway(t, command(t, "cat")), slogDiscard())
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen = %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("the file was replaced")
	}
}

func TestRedirPortRedirectsToTheMainPort(t *testing.T) {
	t.Parallel()
	srv := serve(t, newGateway(t, command(t, "cat")), Listeners{
		Addrs: []string{"127.0.0.1:0"}, RedirectAddrs: []string{"127.0.0.1:0"}, RedirectPort: 8443,
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + srv.redirects[0].Addr().String() + "/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "http://127.0.0.1:8443/path?q=1" {
		t.Errorf("redirect: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
