package redisbus

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Errors are explained in Redis's terms: what Redis said or did, and what
// to do about it, never a client library's parse error. Each is counted
// under a kind, one of ErrorKinds (wsgate_bus_errors_total{kind}).

// Kinds of bus errors, for the metrics.
const (
	KindUnreachable = "unreachable"   // no connection, or no answer in time
	KindAuth        = "auth"          // the password or user was refused
	KindNoSuchDB    = "no_such_db"    // the database number is out of range
	KindPermission  = "permission"    // the ACL user lacks a command, key or channel
	KindNotRedis    = "not_redis"     // what answers does not speak Redis's protocol
	KindReadOnly    = "readonly"      // a replica answered where the master was wanted
	KindMemory      = "out_of_memory" // maxmemory reached
	KindLoading     = "loading"       // Redis is loading its dataset
	KindCutOff      = "cut_off"       // Redis closed a subscription (client-output-buffer-limit)
	KindLeaseLost   = "lease_lost"    // a leader lost its lease
	KindGap         = "gap"           // a subscription missed messages
	KindReplication = "replication"   // no replica acknowledged lines in time
	KindMalformed   = "malformed"     // an entry in Redis did not decode
	KindOther       = "other"         // anything else
)

// ErrorKinds lists every kind, so that each series shows from the start.
var ErrorKinds = [...]string{KindUnreachable, KindAuth, KindNoSuchDB, KindPermission, KindNotRedis, KindReadOnly,
	KindMemory, KindLoading, KindCutOff, KindLeaseLost, KindGap, KindReplication, KindMalformed, KindOther}

// busError is an error of the bus explained: its kind and what it means.
type busError struct {
	kind string
	text string
	err  error
}

func (e *busError) Error() string { return e.text }
func (e *busError) Unwrap() error { return e.err }

// Fatal reports whether retrying cannot mend the fault: the bus's settings
// are wrong (its password, database, user's permissions, or address).
func (e *busError) Fatal() bool {
	switch e.kind {
	case KindAuth, KindNoSuchDB, KindPermission, KindNotRedis:
		return true
	}
	return false
}

// kindOf returns the kind of an error of the bus.
func kindOf(err error) string {
	var be *busError
	if errors.As(err, &be) {
		return be.kind
	}
	return explain(err).kind
}

// redisReplies maps the prefixes of Redis's error replies to a kind and an
// explanation.
var redisReplies = []struct {
	prefix, kind, text string
}{
	{"NOAUTH", KindAuth, "Redis requires a password (NOAUTH): give it in the bus URL, redis://:PASSWORD@HOST:PORT/DB"},
	{"WRONGPASS", KindAuth, "Redis refused the user name or password in the bus URL (WRONGPASS): correct them"},
	{"ERR invalid password", KindAuth, "Redis refused the password in the bus URL: correct it"},
	{"ERR invalid username-password", KindAuth, "Redis refused the user name or password in the bus URL: correct them"},
	{"ERR AUTH", KindAuth, "the bus URL gives a password, but Redis has none set (requirepass): drop it from the URL, or set one in Redis"},
	{"ERR DB index is out of range", KindNoSuchDB, "Redis has no such database (it has `databases` of them, 16 by default, numbered from 0): name one in range in the bus URL, redis://HOST:PORT/0"},
	{"ERR invalid DB index", KindNoSuchDB, "the bus URL names no valid database: use a number from 0, redis://HOST:PORT/0"},
	{"NOPERM", KindPermission, permissionText},
	{"ERR The user executing the script can't run", KindPermission, permissionText},
	{"READONLY", KindReadOnly, "Redis answered as a read-only replica (READONLY): point the bus at the master, or name the sentinels (redis+sentinel://) so that wsgate follows failovers"},
	{"OOM", KindMemory, "Redis is out of memory (OOM: maxmemory reached) and refuses to store lines"},
	{"LOADING", KindLoading, "Redis is loading its dataset into memory (LOADING) and answers nothing else yet"},
	{"MASTERDOWN", KindUnreachable, "the replica lost its master (MASTERDOWN)"},
	{"NOREPLICAS", KindReplication, "Redis has too few good replicas to accept writes (NOREPLICAS: min-replicas-to-write)"},
	{"MISCONF", KindOther, "Redis cannot save its dataset and refuses writes (MISCONF): see its log"},
	{"BUSY", KindOther, "Redis is busy running a script (BUSY)"},
}

// permissionText explains a command, key or channel the ACL user may not
// use.
const permissionText = "the Redis user lacks a permission the bus needs (NOPERM): give it the keys ~wsgate:*, the channels &wsgate:* and the commands SECURITY.md lists"

// explain returns err in Redis's terms, with its kind.
func explain(err error) *busError {
	var be *busError
	if errors.As(err, &be) {
		return be
	}
	msg := err.Error()
	var re redis.Error
	if errors.As(err, &re) && !errors.Is(err, redis.ErrClosed) {
		for _, r := range redisReplies {
			if strings.HasPrefix(re.Error(), r.prefix) {
				return &busError{kind: r.kind, text: r.text, err: err}
			}
		}
		return &busError{kind: KindOther, text: "Redis answered: " + re.Error(), err: err}
	}
	var x509Err x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrLeaseLost):
		return &busError{kind: KindLeaseLost, text: msg, err: err}
	case errors.Is(err, errGap):
		return &busError{kind: KindGap, text: msg, err: err}
	case errors.Is(err, errBadEntry):
		return &busError{kind: KindMalformed, text: msg, err: err}
	case strings.Contains(msg, "can't parse") || strings.Contains(msg, "invalid reply") || strings.Contains(msg, "got reply"):
		return &busError{kind: KindNotRedis, text: "the answer is not in Redis's protocol: is the bus URL's port a Redis one?", err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &busError{kind: KindUnreachable, text: "nothing accepts connections at the bus's address (connection refused): is Redis running there?", err: err}
	case errors.As(err, &dnsErr):
		return &busError{kind: KindUnreachable, text: "the bus's host name does not resolve: " + dnsErr.Error(), err: err}
	case errors.As(err, &x509Err) || errors.As(err, &hostErr):
		return &busError{kind: KindUnreachable, text: "Redis's TLS certificate is not trusted (" + msg + "): give its CA in SSL_CERT_FILE", err: err}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &busError{kind: KindUnreachable, text: "Redis did not answer in time", err: err}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || errors.Is(err, redis.ErrClosed):
		return &busError{kind: KindUnreachable, text: "Redis closed the connection", err: err}
	}
	return &busError{kind: KindOther, text: msg, err: err}
}

// explainCutOff explains the end of a subscription that Redis closed while
// it still runs: it cuts off a subscriber that falls further behind than
// client-output-buffer-limit pubsub allows. A Redis that restarted, or
// that cannot be asked, leaves err as explain has it.
func (b *Bus) explainCutOff(ctx context.Context, err error, runID string) error {
	be := explain(err)
	if be.kind != KindUnreachable && be.kind != KindNotRedis {
		return be
	}
	info, ierr := b.rdb.Info(ctx, "server").Result()
	if ierr != nil || runID == "" || infoField(info, "run_id") != runID {
		return be // gone, or another Redis since: a restart
	}
	limit := "client-output-buffer-limit pubsub"
	if cfg, cerr := b.rdb.ConfigGet(ctx, "client-output-buffer-limit").Result(); cerr == nil {
		f := strings.Fields(cfg["client-output-buffer-limit"])
		for i := 0; i+3 < len(f); i++ {
			if f[i] == "pubsub" {
				limit = fmt.Sprintf("client-output-buffer-limit pubsub %s %s %s (hard limit bytes, soft limit bytes, seconds)", f[i+1], f[i+2], f[i+3])
			}
		}
	}
	return &busError{kind: KindCutOff, err: err, text: "Redis cut this instance's subscription off while it kept running: " +
		"the instance fell further behind the stream than " + limit + " allows (it was short of CPU, stopped, or its network was slow), " +
		"or a CLIENT KILL ended it"}
}

// infoField returns a field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
