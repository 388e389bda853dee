// Package wsconn is the connection layer of a WebSocket server's session:
// the write side of one client connection (Wire: data in chunks with control
// frames between them, deadlines derived from the client's progress, a close
// frame that jumps ahead or waits behind), the batch of frames waiting for
// it, the watchdog that pings the client and bounds the close handshake, the
// record of how the connection ended, and what the socket itself can tell
// (a peer that hung up, bytes not yet acknowledged). It knows WebSocket
// frames through internal/frames and nothing of processes or HTTP.
package wsconn
