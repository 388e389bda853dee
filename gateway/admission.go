package gateway

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/fairness"
	"github.com/wsgate/wsgate/internal/httppolicy"
	"github.com/wsgate/wsgate/internal/observe"
)

// Admission: one pipeline decides every request before anything runs or is
// held for it. The request is resolved once (request: who the client is,
// which endpoint, which subprotocol) and each step reads that value and
// either lets it on or returns a refusal saying how it is told and counted.
// The order is the contract's: path sanity, Host, origin, rate, identity,
// subprotocol, handshake validity, then capacity. Plain HTTP requests go
// through the steps that apply to them (path sanity, Host and identity)
// and then to the plain handler. The steps are built once, in New.

// request is an HTTP request as admission resolves it, once: every later
// step, the session and its child's environment read it.
type request struct {
	r        *http.Request
	upgrade  bool              // a WebSocket handshake, not a plain request
	client   httppolicy.Client // who sent it
	endpoint httppolicy.Endpoint
	protocol string // the subprotocol chosen, or ""
	id       string // UNIQUE_ID of the connection
	identity auth.Identity
	follow   *following // last_event_id (resume.go); nil when not given
}

// refusal is why a request is not served, and how that is told, counted
// and logged. A refusal with an HTTP status is answered before any upgrade;
// one without (capacity) completes the handshake and closes at once with
// its close code, since browsers cannot read an HTTP status.
type refusal struct {
	status int                   // HTTP status; 0 for a refusal told by a close frame
	code   int                   // close code, when status is 0
	reason string                // what the client is told, and the log says
	detail string                // told the client after the reason, not logged as the message
	attrs  []any                 // more for the log line
	metric observe.RefusalReason // what it is counted as; "" for nothing
	level  slog.Level            // how loud the log line is
	hint   string                // what would let it in, for the log line
	header http.Header           // response headers of an HTTP refusal, if any
}

// A step is one check of admission: nil lets the request on.
type step func(q *request) *refusal

// admissionSteps returns the steps every request goes through, in order.
// upgrade says which list: the handshake's, or a plain request's.
func (g *Gateway) admissionSteps(upgrade bool) []step {
	if !upgrade {
		return []step{g.checkPath, g.checkHost, g.checkIdentity}
	}
	return []step{g.checkPath, g.checkHost, g.checkEndpoint, g.checkOrigin, g.checkRate, g.checkIdentity,
		g.checkSubprotocol, checkHandshake, g.checkResume}
}

// admit resolves r and runs it through the steps, returning the request
// and its refusal, if any.
func (g *Gateway) admit(r *http.Request) (*request, *refusal) {
	q := &request{r: r, upgrade: websocket.IsWebSocketUpgrade(r), client: g.proxies.Client(r)}
	steps := g.plainSteps
	if q.upgrade {
		steps = g.upgradeSteps
	}
	for _, check := range steps {
		if ref := check(q); ref != nil {
			return q, ref
		}
	}
	return q, nil
}

// checkPath refuses a path holding a control character: it would reach
// PATH_INFO and the other path variables, a NUL making the command fail to
// start, a newline splitting them.
func (g *Gateway) checkPath(q *request) *refusal {
	if !httppolicy.HasControlChar(q.r.URL.Path) {
		return nil
	}
	return &refusal{status: http.StatusBadRequest, reason: "control character in path", metric: observe.RefusedBadRequest, level: slog.LevelInfo}
}

// checkHost refuses, when every listener is on loopback, a Host that is not
// a loopback name or address nor allowed by the origin policy: otherwise a
// page whose name an attacker points at 127.0.0.1 (DNS rebinding) is
// same-origin with itself and could drive a local gateway, or read what its
// plain side serves. A request a trusted proxy forwarded passes: the proxy
// asked for the public name. One from the proxy's address that carries no
// forwarding header is a direct client, and checked.
func (g *Gateway) checkHost(q *request) *refusal {
	r := q.r
	if !g.cfg.LoopbackOnly || q.client.Forwarded ||
		httppolicy.LoopbackHost(r.Host) || g.origins.AllowsHost(r.Host, r.TLS != nil) {
		return nil
	}
	return &refusal{status: http.StatusForbidden, reason: "host not allowed", metric: observe.RefusedOrigin,
		level: slog.LevelWarn, hint: httppolicy.HostHint(r.Host)}
}

// checkEndpoint resolves the endpoint the path names.
func (g *Gateway) checkEndpoint(q *request) *refusal {
	e, err := g.endpoints.Route(q.r.URL.Path)
	if err != nil {
		return &refusal{status: http.StatusNotFound, reason: "no such endpoint", metric: observe.RefusedNotFound, level: slog.LevelDebug}
	}
	q.endpoint = e
	return nil
}

// checkOrigin refuses a browser origin the policy does not allow.
func (g *Gateway) checkOrigin(q *request) *refusal {
	if g.origins.Allows(q.r, q.client.Host) {
		return nil
	}
	origin := q.r.Header.Get("Origin")
	return &refusal{status: http.StatusForbidden, reason: "origin not allowed", metric: observe.RefusedOrigin,
		level: slog.LevelWarn, hint: httppolicy.OriginHint(origin)}
}

// checkSubprotocol chooses the subprotocol, refusing a client that offers
// only ones not served.
func (g *Gateway) checkSubprotocol(q *request) *refusal {
	protocol, ok := g.protocols.Choose(q.r)
	if ok {
		q.protocol = protocol
		return nil
	}
	served := strings.Join(g.protocols, ", ")
	return &refusal{status: http.StatusBadRequest, reason: "no subprotocol in common", detail: "this endpoint serves " + served,
		attrs:  []any{"offered", strings.Join(httppolicy.Offered(q.r), ","), "served", strings.Join(g.protocols, ",")},
		metric: observe.RefusedBadRequest, level: slog.LevelInfo,
		hint: "serve one of them with --subprotocol"}
}

// checkHandshake refuses a handshake that the upgrade would refuse, before
// anything is started or held for it.
func checkHandshake(q *request) *refusal {
	if bad := httppolicy.CheckHandshake(q.r); bad != nil {
		return &refusal{status: bad.Status, reason: bad.Reason, header: bad.Header, metric: observe.RefusedBadRequest, level: slog.LevelInfo}
	}
	return nil
}

// refuseHTTP answers a request refused before any upgrade, counts the
// refusal and logs it once.
func (g *Gateway) refuseHTTP(w http.ResponseWriter, q *request, ref *refusal) {
	g.noteRefusal(q, ref)
	for name, values := range ref.header {
		w.Header()[name] = values
	}
	text := ref.reason
	if ref.detail != "" {
		text += ": " + ref.detail
	}
	http.Error(w, text, ref.status)
}

// noteRefusal counts a refusal of a handshake and logs it.
func (g *Gateway) noteRefusal(q *request, ref *refusal) {
	what := "request refused"
	if q.upgrade {
		what = "handshake refused"
		if ref.metric != "" {
			g.observe.HandshakeRefused(ref.metric)
		}
	}
	attrs := []any{"remote", q.client.Addr, "path", q.r.URL.EscapedPath(), "reason", ref.reason}
	if q.client.Proxy != "" {
		attrs = append(attrs, "proxy", q.client.Proxy)
	}
	if origin := q.r.Header.Get("Origin"); origin != "" && ref.metric == observe.RefusedOrigin {
		attrs = append(attrs, "origin", origin, "host", q.client.Host)
	}
	attrs = append(attrs, ref.attrs...)
	if ref.hint != "" {
		attrs = append(attrs, "hint", ref.hint)
	}
	g.log.Log(q.r.Context(), ref.level, what+": "+ref.reason, attrs...)
}

// Refusals told by a close frame after the upgrade.
var (
	refusedTooMany = refusal{code: websocket.CloseTryAgainLater, reason: errTooManyForks.Error(),
		metric: observe.RefusedLimit, level: slog.LevelInfo, hint: "raise --maxconns or --maxforks"}
	refusedBus = refusal{code: websocket.CloseTryAgainLater, reason: errBusUnavailable.Error(),
		metric: observe.RefusedBus, level: slog.LevelInfo}
)

// reserve takes the capacity a connection needs: a connection slot, one
// of its address's, and a child slot when it will run a child of its own (a
// shared child takes its slot when it starts). It returns nil and the
// refusal of the first limit reached, holding nothing.
func (g *Gateway) reserve(q *request) (*fairness.Held, *refusal) {
	held, err := g.capacity.Reserve(q.client.Addr, !g.cfg.Broadcast)
	switch {
	case errors.Is(err, fairness.ErrTooManyFromAddress):
		return nil, &refusedPerAddress
	case err != nil:
		return nil, &refusedTooMany
	}
	return held, nil
}
