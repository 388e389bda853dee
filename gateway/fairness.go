package gateway

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/fairness"
	"github.com/wsgate/wsgate/internal/observe"
)

// Fairness: one client address cannot take what is meant for all. Its
// handshakes are limited in rate (Config.RateLimit: 429 before anything is
// started) and its connections in number (Config.MaxConnsPerAddr: part of
// the capacity a connection reserves, given back with it).

// reasonPerAddress is the close reason of a connection over
// MaxConnsPerAddr.
const reasonPerAddress = "too many connections from your address"

// refusedPerAddress is the refusal of a connection over MaxConnsPerAddr,
// told by a close frame after the upgrade, as the other limits are.
var refusedPerAddress = refusal{code: websocket.CloseTryAgainLater, reason: reasonPerAddress,
	metric: observe.RefusedPerAddress, level: slog.LevelInfo, hint: "raise --maxconnsperip; behind a reverse proxy, name it with --trustedproxy"}

// newFairness makes the limiter and the counter cfg asks for.
func newFairness(cfg Config) (*fairness.RateLimiter, *fairness.Counter) {
	var rate *fairness.RateLimiter
	var perAddr *fairness.Counter
	if cfg.RateLimit > 0 {
		rate = fairness.NewRateLimiter(cfg.RateLimit, 0)
	}
	if cfg.MaxConnsPerAddr > 0 {
		perAddr = fairness.NewCounter(cfg.MaxConnsPerAddr)
	}
	return rate, perAddr
}

// checkRate refuses a handshake over the client address's rate, telling it
// when to come back.
func (g *Gateway) checkRate(q *request) *refusal {
	if g.rate == nil {
		return nil
	}
	ok, wait := g.rate.Allow(fairness.KeyOf(q.client.Addr))
	if ok {
		return nil
	}
	return &refusal{status: http.StatusTooManyRequests, reason: "too many handshakes from your address",
		metric: observe.RefusedRate, level: slog.LevelInfo, hint: "raise --ratelimit",
		header: http.Header{"Retry-After": {fairness.RetryAfter(wait)}}}
}
