package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and proxiedHost
// and a client certificate, written as PEM files.
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
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{proxiedHost},
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage:    x509.KeyUsageDigitalSignature,
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

// dialTLS opens a wss:// connection to g with the client's TLS settings and
// checks that it echoes, or returns the handshake's error.
func dialTLS(t *testing.T, g *gatewayProc, cfg *tls.Config) error {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: cfg}
	conn, resp, err := d.Dial("wss://"+g.addr+"/", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	defer conn.Close()
	send(t, conn, "over wss")
	if got := receive(t, conn); got != "over wss" {
		t.Errorf("echo %q, want %q", got, "over wss")
	}
	return nil
}

func TestTLS_ServesWSSWithTLS12OrLater(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	g := startGateway(t, "--ssl", "--sslcert="+pki.serverCert, "--sslkey="+pki.serverKey, "cat")
	if err := dialTLS(t, g, &tls.Config{RootCAs: pki.caPool}); err != nil {
		t.Fatalf("wss: %v", err)
	}
	if err := dialTLS(t, g, &tls.Config{RootCAs: pki.caPool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}

func TestTLS_SSLCARequiresClientCertificates(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	g := startGateway(t, "--ssl", "--sslcert="+pki.serverCert, "--sslkey="+pki.serverKey, "--sslca="+pki.caFile, "cat")
	if err := dialTLS(t, g, &tls.Config{RootCAs: pki.caPool}); err == nil {
		t.Error("a client without a certificate was served")
	}
	if err := dialTLS(t, g, &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.clientCert}}); err != nil {
		t.Errorf("a client with a certificate: %v", err)
	}
}

func TestTLS_FilesThatCannotBeLoadedAreErrorsNamingTheFlag(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	expectUsageError(t, []string{"--ssl", "--sslcert=/nonexistent.pem", "--sslkey=" + pki.serverKey, "cat"}, "--sslcert", "/nonexistent.pem")
	expectUsageError(t, []string{"--ssl", "--sslcert=" + pki.serverCert, "--sslkey=" + pki.serverKey, "--sslca=" + pki.serverKey, "cat"}, "--sslca", "no PEM certificate")
}
