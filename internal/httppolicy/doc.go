// Package httppolicy decides what an HTTP request may reach, before anything
// runs for it: which endpoint its path names (and whether the path is sane),
// whether its Host may be served when every listener is on loopback (DNS
// rebinding), whether its browser origin is allowed, who the client is when a
// trusted reverse proxy forwards it, and which subprotocol it gets. It knows
// nothing of WebSocket framing, sessions or processes; the gateway asks it.
package httppolicy
