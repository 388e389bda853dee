package frames

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// WebSocket opcodes (RFC 6455 section 5.2) of the frames wsgate writes.
const (
	OpContinuation = 0x0
	OpText         = byte(websocket.TextMessage)
	OpBinary       = byte(websocket.BinaryMessage)
	OpClose        = byte(websocket.CloseMessage)
	OpPing         = byte(websocket.PingMessage)
	OpPong         = byte(websocket.PongMessage)
)

const (
	FinBit = 0x80
	// MaxHeader is the longest header of a server frame (no mask).
	MaxHeader = 10
	// MaxControlPayload is the most a control frame carries.
	MaxControlPayload = 125
)

// AppendHeader appends the header of an unmasked frame, as a server
// sends, carrying size bytes of payload.
func AppendHeader(b []byte, op byte, fin bool, size int) []byte {
	first := op
	if fin {
		first |= FinBit
	}
	switch {
	case size <= MaxControlPayload:
		return append(b, first, byte(size))
	case size <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, first, 126), uint16(size))
	}
	return binary.BigEndian.AppendUint64(append(b, first, 127), uint64(size))
}

// PrefixedText returns one final text frame whose payload is prefix then
// text, made with one allocation, and the payload's size; with deflate,
// also its compressed frame when that is smaller, else nil.
func PrefixedText(prefix, text []byte, deflate bool) (frame, compressed []byte, size int) {
	size = len(prefix) + len(text)
	// The payload goes after room for the longest header, which then goes
	// just before it.
	buf := append(append(make([]byte, MaxHeader, MaxHeader+size), prefix...), text...)
	payload := buf[MaxHeader:]
	var header [MaxHeader]byte
	h := AppendHeader(header[:0], OpText, true, size)
	frame = buf[MaxHeader-len(h):]
	copy(frame, h)
	if deflate {
		if f := AppendMessage(nil, OpText, payload, true); f[0]&RSV1Bit != 0 {
			compressed = f
		}
	}
	return frame, compressed, size
}

// ControlFrame returns a whole control frame; payload is cut to what a
// control frame can carry.
func ControlFrame(op byte, payload []byte) []byte {
	if len(payload) > MaxControlPayload {
		payload = payload[:MaxControlPayload]
	}
	return append(AppendHeader(make([]byte, 0, 2+len(payload)), op, true, len(payload)), payload...)
}

// CloseFrame returns a close frame with code and reason, the reason cut to
// fit at a character boundary.
func CloseFrame(code int, reason string) []byte {
	return ControlFrame(OpClose, websocket.FormatCloseMessage(code, TruncateReason(reason)))
}

// Opcode returns the opcode of the whole frame f.
func Opcode(f []byte) byte {
	if len(f) == 0 {
		return 0xff
	}
	return f[0] & 0x0f
}

// CloseContent returns the code and reason of a close frame that
// CloseFrame made.
func CloseContent(frame []byte) (int, string) {
	if len(frame) < 4 {
		return websocket.CloseNoStatusReceived, ""
	}
	return int(binary.BigEndian.Uint16(frame[2:4])), string(frame[4:])
}

// TruncateReason fits a close reason in a control frame (123 bytes), cut at
// a character boundary.
func TruncateReason(reason string) string {
	const max = 123
	if len(reason) <= max {
		return reason
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
