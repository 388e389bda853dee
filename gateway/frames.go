package gateway

import (
	"encoding/binary"

	"github.com/gorilla/websocket"
)

// WebSocket opcodes (RFC 6455 section 5.2) of the frames wsgate writes.
const (
	opContinuation = 0x0
	opText         = byte(websocket.TextMessage)
	opBinary       = byte(websocket.BinaryMessage)
	opClose        = byte(websocket.CloseMessage)
	opPing         = byte(websocket.PingMessage)
	opPong         = byte(websocket.PongMessage)
)

const (
	finBit = 0x80
	// maxFrameHeader is the longest header of a server frame (no mask).
	maxFrameHeader = 10
	// maxControlPayload is the most a control frame carries.
	maxControlPayload = 125
)

// appendFrameHeader appends the header of an unmasked frame, as a server
// sends, carrying size bytes of payload.
func appendFrameHeader(b []byte, op byte, fin bool, size int) []byte {
	first := op
	if fin {
		first |= finBit
	}
	switch {
	case size <= maxControlPayload:
		return append(b, first, byte(size))
	case size <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, first, 126), uint16(size))
	}
	return binary.BigEndian.AppendUint64(append(b, first, 127), uint64(size))
}

// controlFrame returns a whole control frame; payload is cut to what a
// control frame can carry.
func controlFrame(op byte, payload []byte) []byte {
	if len(payload) > maxControlPayload {
		payload = payload[:maxControlPayload]
	}
	return append(appendFrameHeader(make([]byte, 0, 2+len(payload)), op, true, len(payload)), payload...)
}

// closeFrame returns a close frame with code and reason, the reason cut to
// fit at a character boundary.
func closeFrame(code int, reason string) []byte {
	return controlFrame(opClose, websocket.FormatCloseMessage(code, truncateReason(reason)))
}

// frameOpcode returns the opcode of the whole frame f.
func frameOpcode(f []byte) byte {
	if len(f) == 0 {
		return 0xff
	}
	return f[0] & 0x0f
}

// closeFrameContent returns the code and reason of a close frame that
// closeFrame made.
func closeFrameContent(frame []byte) (int, string) {
	if len(frame) < 4 {
		return websocket.CloseNoStatusReceived, ""
	}
	return int(binary.BigEndian.Uint16(frame[2:4])), string(frame[4:])
}
