package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/wsgate/wsgate/internal/auth"
)

// validateAuth checks the identity and fairness flags that need others,
// and their ranges.
func (c *CLI) validateAuth() error {
	switch {
	case c.JWTKey == "" && (c.JWTAudience != "" || c.JWTIssuer != "" || c.JWTCookie != ""):
		return errors.New("--jwtaudience, --jwtissuer and --jwtcookie need --jwtkey=FILE")
	case c.UserHeader != "" && len(c.TrustedProxy) == 0:
		return fmt.Errorf("--userheader=%s needs --trustedproxy: the header is believed only from the proxy that set it", c.UserHeader)
	case c.UserHeader != "" && !isToken(c.UserHeader):
		return fmt.Errorf("--userheader=%q is not a header name", c.UserHeader)
	case strings.EqualFold(c.UserHeader, "Authorization"):
		return errors.New("--userheader cannot be Authorization: name the header the proxy sets, such as X-Auth-Request-User")
	case c.JWTCookie != "" && !isToken(c.JWTCookie):
		return fmt.Errorf("--jwtcookie=%q is not a cookie name", c.JWTCookie)
	case c.AuthTimeout <= 0:
		return fmt.Errorf("--authtimeout=%v must be positive", c.AuthTimeout)
	case c.MaxConnsPerIP < 0:
		return fmt.Errorf("--maxconnsperip=%d is negative: use 0 for unlimited", c.MaxConnsPerIP)
	case c.RateLimit < 0:
		return fmt.Errorf("--ratelimit=%v is negative: use 0 for unlimited", c.RateLimit)
	case c.MaxLifetime < 0:
		return fmt.Errorf("--maxlifetime=%v is negative: use 0 for no bound", c.MaxLifetime)
	case c.IdleTimeout < 0:
		return fmt.Errorf("--idletimeout=%v is negative: use 0 for no bound", c.IdleTimeout)
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2): a
// header or cookie name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c > 0x7e || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// authMethods loads what the identity flags name. Each error names its
// flag and what to do.
func (c *CLI) authMethods(logger *slog.Logger) (auth.Methods, error) {
	m := auth.Methods{TokenCookie: c.JWTCookie, UserHeader: c.UserHeader}
	var err error
	if c.BasicAuth != "" {
		if m.Basic, err = auth.LoadBasic(c.BasicAuth); err != nil {
			return m, fmt.Errorf("--basicauth: %w", err)
		}
		if m.Basic.Users() == 0 {
			return m, fmt.Errorf("--basicauth: %s names no user: add one with htpasswd -B %s USER", c.BasicAuth, c.BasicAuth)
		}
	}
	if c.JWTKey != "" {
		opts := auth.TokenOptions{Audience: c.JWTAudience, Issuer: c.JWTIssuer}
		if m.Tokens, err = auth.LoadTokens(c.JWTKey, opts); err != nil {
			return m, fmt.Errorf("--jwtkey: %w", err)
		}
	}
	if c.AuthCmd != "" {
		path, err := exec.LookPath(c.AuthCmd)
		if err != nil {
			return m, fmt.Errorf("--authcmd: %q cannot be run: %v", c.AuthCmd, errors.Unwrap(err))
		}
		m.Command = auth.NewCommand(path, c.AuthTimeout, logger)
	}
	return m, nil
}

// logAuth says, at start-up, who may connect.
func (w *wiring) logAuth(m auth.Methods) {
	if !m.Any() {
		return
	}
	attrs := []any{}
	if m.Basic != nil {
		attrs = append(attrs, "basicauth", m.Basic.Path(), "users", m.Basic.Users())
	}
	if m.Tokens != nil {
		attrs = append(attrs, "jwtkey", w.cli.JWTKey, "keys", m.Tokens.Describe())
	}
	if m.UserHeader != "" {
		attrs = append(attrs, "userheader", m.UserHeader)
	}
	if m.Command != nil {
		attrs = append(attrs, "authcmd", m.Command.Path(), "authtimeout", w.cli.AuthTimeout)
	}
	w.logger.Info("who may connect", attrs...)
}

// reloadAuth reads the --basicauth file again, on SIGHUP.
func (w *wiring) reloadAuth() {
	basic := w.auth.Basic
	if basic == nil {
		return
	}
	if err := basic.Reload(); err != nil {
		w.logger.Error("--basicauth not reloaded; the users loaded before still get in", "err", err)
		return
	}
	w.logger.Info("--basicauth reloaded: credentials the file no longer vouches for are refused", "basicauth", basic.Path(), "users", basic.Users())
}
