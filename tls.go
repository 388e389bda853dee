package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// certificate is the server's certificate and key, which reload replaces
// (SIGHUP): new handshakes get the new one, connections made go on.
type certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// loadCertificate loads --sslcert and --sslkey.
func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload loads the files again and, if they hold a certificate and its key,
// serves that from now on and returns when it expires. Otherwise the one
// served stays.
func (c *certificate) reload() (notAfter time.Time, err error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return time.Time{}, fmt.Errorf("load --sslcert and --sslkey: %w", err)
	}
	c.current.Store(&cert)
	return cert.Leaf.NotAfter, nil // LoadX509KeyPair parses the leaf
}

// get is tls.Config.GetCertificate: the certificate loaded last.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// tlsConfig loads --sslcert and --sslkey and, with --sslca, requires clients
// to present certificates that CA signed. TLS 1.2 is the oldest version
// spoken. The certificate is returned too, for reloads; --sslca is read once.
func (c *CLI) tlsConfig() (*tls.Config, *certificate, error) {
	cert, err := loadCertificate(c.SSLCert, c.SSLKey)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cert.get,
	}
	if c.SSLCA == "" {
		return cfg, cert, nil
	}
	pem, err := os.ReadFile(c.SSLCA)
	if err != nil {
		return nil, nil, fmt.Errorf("read --sslca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, errors.New("--sslca " + c.SSLCA + " holds no PEM certificate")
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, cert, nil
}
