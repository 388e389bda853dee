// Package cgienv builds the environment of a program run for an HTTP
// request, as CGI and websocketd have it: the request's variables
// (SERVER_*, REQUEST_*, SCRIPT_NAME, PATH_INFO, REMOTE_*, AUTH_TYPE,
// REMOTE_USER, HTTP_<NAME> for each header), the variables passed through,
// and nothing else of the server's own environment.
package cgienv

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/httppolicy"
)

// Env is the environment of one connection's program: the CGI variables of
// the handshake request, the passed-through variables, and nothing else.
type Env struct {
	// Request is the handshake.
	Request *http.Request
	// Remote is the client's address: the socket's, or a trusted proxy's
	// word.
	Remote string
	// HTTPS says the client spoke TLS, to us or to a trusted proxy.
	HTTPS bool
	// ID is UNIQUE_ID.
	ID string
	// ScriptName and PathInfo are how the URL path splits.
	ScriptName, PathInfo string
	// RemoteHost is the client's name, when it was looked up; else
	// REMOTE_HOST is its address.
	RemoteHost string
	// Software is SERVER_SOFTWARE.
	Software string
	// PassEnv holds "NAME=value" entries passed through.
	PassEnv []string
	// Subprotocol is the subprotocol chosen, set as WEBSOCKET_PROTOCOL
	// when subprotocols are served; nil when they are not.
	Subprotocol *string
	// Identity is who admission found the client to be.
	Identity auth.Identity
}

// List returns the environment as "NAME=value" entries.
func (e Env) List() []string {
	r := e.Request
	remoteAddr, remotePort := httppolicy.SplitHostPort(e.Remote)
	serverName, serverPort := httppolicy.SplitHostPort(r.Host)
	if serverPort == "" {
		serverPort = localPort(r)
	}
	remoteHost := e.RemoteHost
	if remoteHost == "" {
		remoteHost = remoteAddr
	}
	env := make([]string, 0, 32+len(r.Header))
	env = append(env, e.PassEnv...)
	add := func(name, value string) { env = append(env, name+"="+value) }
	add("SERVER_SOFTWARE", e.Software)
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("SERVER_PROTOCOL", r.Proto)
	add("SERVER_NAME", serverName)
	add("SERVER_PORT", serverPort)
	add("REQUEST_METHOD", r.Method)
	add("REQUEST_URI", r.URL.RequestURI())
	add("SCRIPT_NAME", e.ScriptName)
	add("PATH_INFO", e.PathInfo)
	add("PATH_TRANSLATED", r.URL.Path) // websocketd's choice: the URL path
	add("QUERY_STRING", r.URL.RawQuery)
	add("REMOTE_ADDR", remoteAddr)
	add("REMOTE_HOST", remoteHost)
	add("REMOTE_PORT", remotePort)
	add("REMOTE_IDENT", "")
	add("REMOTE_USER", e.Identity.User)
	add("AUTH_TYPE", e.Identity.Type)
	env = append(env, e.Identity.Vars...)
	add("CONTENT_LENGTH", "")
	add("CONTENT_TYPE", "")
	add("UNIQUE_ID", e.ID)
	if e.HTTPS {
		add("HTTPS", "on")
	}
	if e.Subprotocol != nil {
		add("WEBSOCKET_PROTOCOL", *e.Subprotocol)
	}
	add("HTTP_HOST", r.Host)
	for name, values := range r.Header {
		if envName, ok := HeaderEnvName(name); ok {
			add(envName, strings.Join(values, ", "))
		}
	}
	return env
}

// HeaderEnvName maps a request header to its HTTP_ variable. Names with
// characters other than letters, digits and '-' are dropped, so that two
// headers cannot map to one name, and Proxy never becomes HTTP_PROXY
// (httpoxy). Host is set from the request itself.
func HeaderEnvName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	for _, c := range name {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", false
		}
	}
	upper := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if upper == "PROXY" || upper == "HOST" {
		return "", false
	}
	return "HTTP_" + upper, true
}

// reverseLookupTimeout bounds the DNS lookup of --reverselookup.
const reverseLookupTimeout = 2 * time.Second

// LookupHost returns the client's DNS name, or "" when it has none.
func LookupHost(remoteAddr string) string {
	host, _ := httppolicy.SplitHostPort(remoteAddr)
	ctx, cancel := context.WithTimeout(context.Background(), reverseLookupTimeout)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, host)
	if err != nil || len(names) == 0 {
		return ""
	}
	return strings.TrimSuffix(names[0], ".")
}

// localPort is the port the request came in on, for a Host header without one.
func localPort(r *http.Request) string {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	_, port := httppolicy.SplitHostPort(addr.String())
	return port
}

// IdentityEnv is what a CGI script is told of who its client is: AUTH_TYPE,
// REMOTE_USER and the token's claims; nothing when no method is in use.
func IdentityEnv(id auth.Identity) []string {
	if id.Type == "" {
		return nil
	}
	return append([]string{"AUTH_TYPE=" + id.Type, "REMOTE_USER=" + id.User}, id.Vars...)
}
