package gateway

import (
	"time"
)

// The sizes and timeouts of a gateway, and how they relate to each other
// and to those of the layers below, in one place. The layers' own:
//
//   - wsconn.WriteChunk (16 KiB): what a client is written at once; a
//     control frame waits for one chunk at most.
//   - wsconn.BatchLimit (64 KiB): the most a batch of frames holds before
//     it is written, the most a read turn takes from a socket, and the bound
//     of decoded client messages waiting for a stdin (childin.Limit).
//   - wsconn.ControlWriteWait (1 s): how long a close frame we start may
//     wait to be taken; wsconn.CloseWait (1 s): how long the client then has
//     to answer. Shutdown's bound (about 2 s + 3 x --closems) is their sum
//     plus the stop sequence's steps (process: 100, 250, 500 ms, each plus
//     --closems).
//   - The HTTP side (httpserver): request headers within 10 s, at most 64
//     KiB of them.

// Defaults for the zero values of Config.
const (
	DefaultMaxMessageSize = 1 << 20  // websocketd's --maxframesize default
	DefaultMaxLineSize    = 16 << 20 // the outbound limit on one line
	DefaultWriteTimeout   = 60 * time.Second
	DefaultQueueSize      = 1024 // messages per broadcast client
)

// Timeouts of the handshake and of the close handshake.
const (
	// handshakeTimeout bounds writing the handshake response.
	handshakeTimeout = 5 * time.Second
	// closeReplyWait bounds how long a client whose side has ended may take
	// to take our answer to its close frame and what is in its way. Output
	// goes nowhere meanwhile and the feeder, which also reaps the child, is
	// held no longer: well within the stop sequence's first steps.
	closeReplyWait = 250 * time.Millisecond
	// stdinCheckInterval is how often a write to a child that does not read
	// its stdin wakes to check whether the client hung up meanwhile.
	stdinCheckInterval = time.Second
)

// abortWait bounds how long Abort waits for the children and sessions it
// ends.
const abortWait = time.Second

// Joining a stream.
const (
	// attachTimeout bounds the handshake's wait for the bus.
	attachTimeout = 2 * time.Second
	// joinAttempts is how often a join tries again when the stream it found
	// ended meanwhile.
	joinAttempts = 3
)

// takeBatch is how many messages a member's writer takes from the stream at
// a time, into an array on its stack: a chunk's worth of short lines.
const takeBatch = 256

// pingFlood is how many of a client's pings answered only by a later pong
// make one that accepts nothing a ping flood rather than merely slow: more
// than a client pinging every 100 ms sends in the default write timeout.
const pingFlood = 1000
