package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// tlsConfig loads --sslcert and --sslkey and, with --sslca, requires clients
// to present certificates that CA signed. TLS 1.2 is the oldest version
// spoken.
func (c *CLI) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.SSLCert, c.SSLKey)
	if err != nil {
		return nil, fmt.Errorf("load --sslcert and --sslkey: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if c.SSLCA == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(c.SSLCA)
	if err != nil {
		return nil, fmt.Errorf("read --sslca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("--sslca " + c.SSLCA + " holds no PEM certificate")
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, nil
}
