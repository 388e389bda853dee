package redisbus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis with a standby: a bus URL can name Redis Sentinels and the master
// they watch instead of one Redis,
//
//	redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]
//
// (rediss+sentinel:// for TLS; a sentinel's port is 26379 unless given;
// USER and PASSWORD are the master's, and ?sentinel_username= and
// ?sentinel_password= the sentinels' own, when they require one). The bus
// then asks the sentinels where the master is, and follows a failover by
// itself: the links of the old master fail (their streams end with 1012,
// and clients that follow positions resume), and the bus is down until the
// sentinels name the new master.
//
// Redis replicates asynchronously, so lines the old master took but had not
// passed to a replica would be lost in a failover, after clients had them.
// So under Sentinel a leader publishes in three steps, pipelined in one
// round trip: its lines are stored (the replay and the count), WAIT until a
// replica has them, and only then published to the other instances (a
// script that checks the lease and the count again), and handed to its own
// clients once that returns. A master with no replica that answers within
// replicaWait delivers without waiting (logged and counted): the stream
// goes on, and a failover in that time may lose its last lines.

// Sentinel URL schemes.
const (
	sentinelScheme    = "redis+sentinel"
	sentinelTLSScheme = "rediss+sentinel"
	// defaultSentinelPort is the port of a sentinel the URL gives none for.
	defaultSentinelPort = "26379"
)

// Replication under Sentinel.
const (
	// replicaWait bounds how long a publication waits for a replica (the
	// default of Bus.replicaWait).
	replicaWait = 200 * time.Millisecond
	// unreplicatedHold is how long, after a replica did not answer in
	// time, publications do not wait for one.
	unreplicatedHold = 5 * time.Second
)

// isSentinelURL reports whether raw names sentinels.
func isSentinelURL(raw string) bool {
	return strings.HasPrefix(raw, sentinelScheme+"://") || strings.HasPrefix(raw, sentinelTLSScheme+"://")
}

// parseSentinelURL reads a redis+sentinel:// URL into go-redis's options for
// a failover client. Its errors never quote the URL, which may hold a
// password.
func parseSentinelURL(raw string) (*redis.FailoverOptions, error) {
	fail := func(why string) error { return fmt.Errorf("bus URL %s: %s", Redact(raw), why) }
	u, hosts, err := parseHostList(raw)
	if err != nil {
		return nil, fail("cannot parse it")
	}
	o := &redis.FailoverOptions{}
	if u.Scheme == sentinelTLSScheme {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	for _, addr := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil { // no port
			host, port = addr, defaultSentinelPort
		}
		if host == "" {
			return nil, fail("a sentinel with no host: want HOST[:PORT],HOST[:PORT]...")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fail(fmt.Sprintf("sentinel %q: the port must be a number from 1 to 65535", addr))
		}
		o.SentinelAddrs = append(o.SentinelAddrs, net.JoinHostPort(host, port))
	}
	path := strings.Split(strings.Trim(u.Path, "/"), "/")
	switch {
	case path[0] == "":
		return nil, fail("no master name: want redis+sentinel://SENTINELS/MASTER[/DB]")
	case len(path) > 2:
		return nil, fail("want /MASTER or /MASTER/DB after the sentinels")
	case len(path) == 2:
		if o.DB, err = strconv.Atoi(path[1]); err != nil || o.DB < 0 {
			return nil, fail(fmt.Sprintf("database %q is not a number from 0", path[1]))
		}
	}
	o.MasterName = path[0]
	q := u.Query()
	for name := range q {
		switch name {
		case "sentinel_username", "sentinel_password":
		default:
			return nil, fail(fmt.Sprintf("unknown parameter %q: a sentinel URL takes sentinel_username and sentinel_password", name))
		}
	}
	o.SentinelUsername, o.SentinelPassword = q.Get("sentinel_username"), q.Get("sentinel_password")
	if o.TLSConfig != nil && len(o.SentinelAddrs) > 0 {
		o.TLSConfig.ServerName, _, _ = net.SplitHostPort(o.SentinelAddrs[0])
	}
	return o, nil
}

// parseHostList parses a URL whose host is a comma-separated list of
// hosts, which url.Parse does not take: it returns the URL with one host
// in their place, and the list.
func parseHostList(raw string) (*url.URL, string, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, "", errors.New("no scheme")
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	userinfo, hosts := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	}
	u, err := url.Parse(scheme + "://" + userinfo + "sentinels" + rest[end:])
	return u, hosts, err
}

// failoverClient returns a client that follows the master the sentinels
// name, with the bus's settings.
func failoverClient(o *redis.FailoverOptions) *redis.Client {
	o.ClientName = clientName
	o.Protocol = 2
	o.DisableIdentity = true
	o.DialTimeout = callTimeout
	o.ReadTimeout = dataTimeout
	o.WriteTimeout = dataTimeout
	o.MaxRetries = -1 // none: a script run twice would publish or queue twice
	o.ContextTimeoutEnabled = true
	return redis.NewFailoverClient(o)
}

// waitsForReplicas reports whether a publication waits for a replica now:
// under Sentinel, unless one did not answer in time a moment ago.
func (b *Bus) waitsForReplicas() bool {
	return b.sentinel && time.Now().UnixNano() >= b.unreplicatedUntil.Load()
}

// unreplicated notes that no replica acknowledged a publication within
// replicaWait: the next ones do not wait, for unreplicatedHold.
func (b *Bus) unreplicated(stream string) {
	b.count(KindReplication)
	b.unreplicatedUntil.Store(time.Now().Add(unreplicatedHold).UnixNano())
	if b.warnedUnreplicated.CompareAndSwap(false, true) {
		b.log.Warn("no replica acknowledged lines in time: they are delivered without waiting, and a failover now may lose the last of them",
			"stream", stream, "wait", b.replicaWait, "for", unreplicatedHold)
	}
}

// replicated notes that a replica acknowledged a publication again.
func (b *Bus) replicated() {
	if b.warnedUnreplicated.CompareAndSwap(true, false) {
		b.log.Info("a replica acknowledges lines again")
	}
}
