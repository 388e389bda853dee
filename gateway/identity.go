package gateway

import (
	"log/slog"
	"net/http"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/observe"
)

// Identity: who may connect (Config.Auth). The identity step finds who a
// request comes from, by the methods in use, then lets the authorization
// command have the last word. What passes goes on without its credential:
// the child, a CGI script, the access log and the broadcast stream key see
// the request as Withhold left it, and AUTH_TYPE and REMOTE_USER instead.

// checkIdentity refuses a request no method lets in, and records who the
// others are.
func (g *Gateway) checkIdentity(q *request) *refusal {
	methods := g.cfg.Auth
	if !methods.Any() {
		return nil
	}
	ctx := q.r.Context()
	id, ref := methods.Identify(ctx, q.r, g.proxies.Trusts(q.r.RemoteAddr))
	if ref != nil {
		return authRefusal(ref)
	}
	authorization := q.r.Header.Get("Authorization")
	q.r = methods.Withhold(q.r)
	if methods.Command != nil {
		q.identity = id // what the command's environment names
		env := processSpec(g.cfg, q).Env
		if authorization != "" {
			env = append(env, "HTTP_AUTHORIZATION="+authorization)
		}
		if id, ref = methods.Command.Authorize(ctx, env, id); ref != nil {
			if ref.Status == http.StatusUnauthorized {
				ref.Challenges = methods.Challenges()
			}
			return authRefusal(ref)
		}
	}
	q.identity = id
	return nil
}

// authRefusal is how a refusal of the auth package is told, counted and
// logged: its status, with the challenges of a 401, at WARN, with what
// would change it.
func authRefusal(ref *auth.Refusal) *refusal {
	r := &refusal{status: ref.Status, reason: ref.Reason, metric: observe.RefusedAuth, level: slog.LevelWarn, hint: ref.Detail}
	if len(ref.Challenges) > 0 {
		r.header = http.Header{"Www-Authenticate": ref.Challenges}
	}
	return r
}

// sessionLogger is the logger of q's session: every line names the
// connection and, when one is known, the user, never the credential.
func sessionLogger(log *slog.Logger, q *request) *slog.Logger {
	if q.identity.User != "" {
		return log.With("id", q.id, "user", q.identity.User)
	}
	return log.With("id", q.id)
}
