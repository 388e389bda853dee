package gateway

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/httppolicy"
)

// cgiEnv is the environment of one connection's child: the CGI variables of
// the handshake request, the passed-through variables, and nothing else.
type cgiEnv struct {
	req        *http.Request
	remote     string // the client's address: the socket's, or a trusted proxy's word
	https      bool   // the client spoke TLS, to us or to a trusted proxy
	id         string
	scriptName string
	pathInfo   string
	remoteHost string
	software   string
	passEnv    []string
	// subprotocol is the subprotocol chosen, set as WEBSOCKET_PROTOCOL
	// when subprotocols are served; nil when they are not.
	subprotocol *string
	// identity is who admission found the client to be.
	identity auth.Identity
}

func (e cgiEnv) list() []string {
	r := e.req
	remoteAddr, remotePort := httppolicy.SplitHostPort(e.remote)
	serverName, serverPort := httppolicy.SplitHostPort(r.Host)
	if serverPort == "" {
		serverPort = localPort(r)
	}
	remoteHost := e.remoteHost
	if remoteHost == "" {
		remoteHost = remoteAddr
	}
	env := make([]string, 0, 32+len(r.Header))
	env = append(env, e.passEnv...)
	add := func(name, value string) { env = append(env, name+"="+value) }
	add("SERVER_SOFTWARE", e.software)
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("SERVER_PROTOCOL", r.Proto)
	add("SERVER_NAME", serverName)
	add("SERVER_PORT", serverPort)
	add("REQUEST_METHOD", r.Method)
	add("REQUEST_URI", r.URL.RequestURI())
	add("SCRIPT_NAME", e.scriptName)
	add("PATH_INFO", e.pathInfo)
	add("PATH_TRANSLATED", r.URL.Path) // websocketd's choice: the URL path
	add("QUERY_STRING", r.URL.RawQuery)
	add("REMOTE_ADDR", remoteAddr)
	add("REMOTE_HOST", remoteHost)
	add("REMOTE_PORT", remotePort)
	add("REMOTE_IDENT", "")
	add("REMOTE_USER", e.identity.User)
	add("AUTH_TYPE", e.identity.Type)
	env = append(env, e.identity.Vars...)
	add("CONTENT_LENGTH", "")
	add("CONTENT_TYPE", "")
	add("UNIQUE_ID", e.id)
	if e.https {
		add("HTTPS", "on")
	}
	if e.subprotocol != nil {
		add("WEBSOCKET_PROTOCOL", *e.subprotocol)
	}
	add("HTTP_HOST", r.Host)
	for name, values := range r.Header {
		if envName, ok := headerEnvName(name); ok {
			add(envName, strings.Join(values, ", "))
		}
	}
	return env
}

// headerEnvName maps a request header to its HTTP_ variable. Names with
// characters other than letters, digits and '-' are dropped, so that two
// headers cannot map to one name, and Proxy never becomes HTTP_PROXY
// (httpoxy). Host is set from the request itself.
func headerEnvName(name string) (string, bool) {
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

// lookupHost returns the client's DNS name, or "" when it has none.
func lookupHost(remoteAddr string) string {
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
