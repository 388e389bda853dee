// Package readiness tells when sockets have data to read, for any number
// of sockets with one goroutine: a socket waited on this way costs a few
// bytes, where a goroutine waiting in a read costs at least its 2 KiB
// stack. On Linux it is an epoll set, itself waited on by the runtime's
// poller (set_epoll.go). Elsewhere, and on Linux under the wsgate_portable
// build tag, an armed watch is a goroutine waiting in the runtime's poller
// (set_portable.go): the same behaviour, at a goroutine's cost per socket
// that waits.
//
// Watches are one-shot: once a socket has data, its callback runs once and
// not again until the watch is armed again, so that whatever reads the
// socket is never run twice at once.
package readiness

import "errors"

// ErrRemoved is returned by Arm once the watch is removed.
var ErrRemoved = errors.New("readiness: watch removed")
