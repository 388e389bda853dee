// Package frames is wsgate's WebSocket frame layer. It decodes,
// incrementally and without blocking, the frames a WebSocket client sends
// to a server: RFC 6455 section 5, plus RFC 7692 permessage-deflate without
// context takeover; and it judges a client's permessage-deflate offers
// (extensions.go).
//
// The caller reads the socket itself and hands each chunk to Feed, so an idle
// connection needs no read buffer of its own: the Decoder holds a buffer only
// while a frame or message is partly received, and drops it once the message
// is complete.
package frames

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Header bits and opcodes (RFC 6455 section 5.2).
const (
	finBit   = 0x80
	rsv1Bit  = 0x40
	rsv23    = 0x30
	maskBit  = 0x80
	opMask   = 0x0f
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xa

	// maxHeader is the longest client frame header: 2 bytes, a 64-bit
	// length and a mask key.
	maxHeader = 2 + 8 + 4
	// maxControl is the most payload a control frame may carry.
	maxControl = 125
)

// Config holds the limits and options of one connection.
type Config struct {
	// MaxMessage is the most payload bytes a data message may carry, after
	// decompression (>0).
	MaxMessage int64
	// Deflate says permessage-deflate was negotiated (server_no_context_takeover;
	// client_no_context_takeover): a data message whose first frame has RSV1
	// set is compressed.
	Deflate bool
}

// Decoder decodes the frames of one client connection. Between messages it
// holds no buffer, only its own fields (64 bytes on 64-bit platforms).
// It is not safe for concurrent use.
type Decoder struct {
	// buf is the data message received so far, followed by the part of a
	// control frame received so far when one straddles two Feed calls.
	// It is nil unless a frame or message is incomplete.
	buf []byte
	// remaining is the payload still to come of the current frame; 0 while
	// a header is read.
	remaining int64
	max       int64
	// mask is the key of the current frame, rotated so that mask[0] applies
	// to the next payload byte.
	mask [4]byte
	// hdr holds a header that straddles Feed calls; hdrLen bytes of it.
	hdr    [maxHeader]byte
	hdrLen uint8
	// frame is the first header byte (FIN, RSV, opcode) of the current frame.
	frame byte
	// ctl is the payload length of the current control frame.
	ctl uint8
	// msg is the RSV1 bit and opcode of the first frame of the data message
	// in progress, 0 if none.
	msg     byte
	deflate bool
	// done is set after an error or a close frame: the rest is ignored.
	done bool
}

// NewDecoder returns a Decoder for a connection with the given limits.
// It panics if cfg.MaxMessage is not positive.
func NewDecoder(cfg Config) *Decoder {
	if cfg.MaxMessage <= 0 {
		panic("frames: Config.MaxMessage must be positive")
	}
	return &Decoder{max: cfg.MaxMessage, deflate: cfg.Deflate}
}

// Handler receives what the client sent, in order. Payloads are valid only
// during the call: they point into the caller's chunk or the Decoder's buffer.
type Handler interface {
	// Message is a whole data message (text or binary), decompressed.
	// Text is not checked for UTF-8: that is the caller's job, since it may
	// want to pass text on unchecked or check it while copying.
	// payload is valid only during the call. A non-nil error stops Feed,
	// which returns it.
	Message(text bool, payload []byte) error
	// Ping is a ping frame, delivered at once even between the fragments of
	// a data message.
	Ping(payload []byte)
	// Pong is a pong frame, delivered at once like a ping.
	Pong(payload []byte)
	// Close is the client's close frame: code 1005 (no status) when it had
	// no payload. After it, Feed consumes nothing more.
	Close(code int, reason string)
}

// ProtocolError is a violation that ends the connection with Code and Reason
// in the server's close frame.
type ProtocolError struct {
	// Code is the close code: 1002 (protocol error), 1007 (bad payload
	// data) or 1009 (message too big).
	Code int
	// Reason is a short lower-case English explanation.
	Reason string
}

// Error returns the reason and the close code.
func (e *ProtocolError) Error() string {
	return "websocket: " + e.Reason + " (close " + strconv.Itoa(e.Code) + ")"
}

func protocolError(reason string) error { return &ProtocolError{Code: 1002, Reason: reason} }

func tooBig() error { return &ProtocolError{Code: 1009, Reason: "message too big"} }

// Feed decodes p, the next bytes read from the client, calling h for each
// complete frame or message in order. It returns the first error: a
// *ProtocolError, or the Handler's error. After an error or a close frame it
// ignores further input and returns nil.
//
// Feed may modify p: a frame that lies whole inside p is unmasked in place
// and handed to h without copying. Feed does not retain p after it returns;
// what is left of an incomplete frame is copied.
func (d *Decoder) Feed(p []byte, h Handler) error {
	for len(p) > 0 && !d.done {
		var err error
		if d.remaining == 0 {
			p, err = d.readHeader(p, h)
		} else {
			p, err = d.readPayload(p, h)
		}
		if err != nil {
			d.stop()
			return err
		}
	}
	if d.done {
		d.stop()
	}
	return nil
}

// Buffered reports whether part of a frame or message is held (a message is
// incomplete). It is false once the decoder has stopped.
func (d *Decoder) Buffered() bool {
	return d.hdrLen > 0 || d.remaining > 0 || d.msg != 0
}

// stop drops all state so that the decoder ignores further input and holds
// no memory.
func (d *Decoder) stop() {
	*d = Decoder{max: d.max, deflate: d.deflate, done: true}
}

// headerSize returns the length of a header whose second byte is b1.
func headerSize(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// readHeader consumes header bytes from p and, once the header is whole,
// starts the frame. It returns the rest of p.
func (d *Decoder) readHeader(p []byte, h Handler) ([]byte, error) {
	var hdr []byte
	if d.hdrLen == 0 && len(p) >= 2 && len(p) >= headerSize(p[1]) {
		// Usual case: the whole header is in p.
		if err := d.check(p[0], p[1]); err != nil {
			return nil, err
		}
		hdr, p = p[:headerSize(p[1])], p[headerSize(p[1]):]
	} else {
		if d.hdrLen < 2 {
			n := copy(d.hdr[d.hdrLen:2], p)
			d.hdrLen += uint8(n)
			p = p[n:]
			if d.hdrLen < 2 {
				return p, nil
			}
			// Reject a bad frame as soon as its first two bytes are in.
			if err := d.check(d.hdr[0], d.hdr[1]); err != nil {
				return nil, err
			}
		}
		size := headerSize(d.hdr[1])
		n := copy(d.hdr[d.hdrLen:size], p)
		d.hdrLen += uint8(n)
		p = p[n:]
		if int(d.hdrLen) < size {
			return p, nil
		}
		hdr = d.hdr[:size]
		d.hdrLen = 0
	}
	if err := d.begin(hdr); err != nil {
		return nil, err
	}
	if d.remaining > 0 {
		return p, nil
	}
	if d.frame&opMask >= opClose {
		return p, d.endControl(nil, h)
	}
	return p, d.endData(d.buf, h)
}

// check validates the first two bytes of a header.
func (d *Decoder) check(b0, b1 byte) error {
	op := b0 & opMask
	if b0&rsv23 != 0 {
		return protocolError("reserved bits set")
	}
	switch op {
	case opCont, opText, opBinary, opClose, opPing, opPong:
	default:
		return protocolError("bad opcode " + strconv.Itoa(int(op)))
	}
	if b0&rsv1Bit != 0 {
		// RFC 7692 section 6: RSV1 marks the first frame of a compressed
		// message, and means nothing elsewhere.
		switch {
		case !d.deflate:
			return protocolError("reserved bits set")
		case op >= opClose:
			return protocolError("compressed control frame")
		case op == opCont:
			return protocolError("compressed continuation frame")
		}
	}
	if b1&maskBit == 0 {
		return protocolError("unmasked client frame")
	}
	switch {
	case op >= opClose:
		if b0&finBit == 0 {
			return protocolError("fragmented control frame")
		}
		if b1&0x7f > maxControl {
			return protocolError("control frame too long")
		}
	case op == opCont:
		if d.msg == 0 {
			return protocolError("continuation without a message")
		}
	case d.msg != 0:
		return protocolError("new message inside a fragmented one")
	}
	return nil
}

// begin starts the frame whose whole (checked) header is hdr.
func (d *Decoder) begin(hdr []byte) error {
	n := int64(hdr[1] & 0x7f)
	key := hdr[2:]
	switch n {
	case 126:
		n = int64(binary.BigEndian.Uint16(hdr[2:]))
		key = hdr[4:]
	case 127:
		u := binary.BigEndian.Uint64(hdr[2:])
		if u>>63 != 0 {
			return protocolError("frame length over 63 bits")
		}
		n = int64(u)
		key = hdr[10:]
	}
	op := hdr[0] & opMask
	if op < opClose {
		// buf holds exactly the message so far: refuse before buffering.
		if n > d.max-int64(len(d.buf)) {
			return tooBig()
		}
		if op != opCont {
			d.msg = hdr[0] & (rsv1Bit | opMask)
		}
	} else {
		d.ctl = uint8(n)
	}
	copy(d.mask[:], key)
	d.frame = hdr[0]
	d.remaining = n
	return nil
}

// readPayload consumes payload bytes of the current frame from p, and ends
// the frame when it is whole. It returns the rest of p.
func (d *Decoder) readPayload(p []byte, h Handler) ([]byte, error) {
	n := d.remaining
	control := d.frame&opMask >= opClose
	if int64(len(p)) >= n {
		fresh := n == int64(d.ctl) // nothing of a control frame held
		if !control {
			// An unfragmented message none of which is held.
			fresh = d.frame&finBit != 0 && d.frame&opMask != opCont && len(d.buf) == 0
		}
		if fresh {
			payload := p[:n]
			unmask(d.mask, payload)
			d.remaining = 0
			if control {
				return p[n:], d.endControl(payload, h)
			}
			return p[n:], d.endData(payload, h)
		}
	}
	k := min(n, int64(len(p)))
	start := len(d.buf)
	if int64(cap(d.buf)-start) < k {
		// Room for as much again as is held (or 512 bytes), but no more
		// than the message can still take: a client cannot make us reserve
		// memory by announcing a length, only by sending bytes. The room
		// reaches past a frame that more fragments follow, so that a big
		// message sent in many frames is not copied again for each.
		rest := d.max - int64(start)
		if control || d.frame&finBit != 0 {
			rest = n // this frame is the last
		}
		room := max(k, min(rest, int64(max(start+int(k), 512))))
		grown := make([]byte, start, start+int(room)) // exactly: append's growth would add a quarter
		d.buf = grown[:copy(grown, d.buf)]
	}
	d.buf = append(d.buf, p[:k]...)
	unmask(d.mask, d.buf[start:])
	d.rotate(k)
	d.remaining -= k
	p = p[k:]
	if d.remaining > 0 {
		return p, nil
	}
	if !control {
		return p, d.endData(d.buf, h)
	}
	cut := len(d.buf) - int(d.ctl)
	err := d.endControl(d.buf[cut:], h)
	d.buf = d.buf[:cut]
	if d.msg == 0 {
		d.buf = nil
	}
	return p, err
}

// endData ends a data frame; payload is the whole message if it was the last.
func (d *Decoder) endData(payload []byte, h Handler) error {
	if d.frame&finBit == 0 {
		return nil
	}
	msg := d.msg
	d.msg = 0
	var err error
	if msg&rsv1Bit != 0 {
		err = inflate(h, msg&opMask == opText, payload, d.max)
	} else {
		err = h.Message(msg&opMask == opText, payload)
	}
	d.buf = nil
	return err
}

// endControl delivers a whole control frame.
func (d *Decoder) endControl(payload []byte, h Handler) error {
	switch d.frame & opMask {
	case opPing:
		h.Ping(payload)
	case opPong:
		h.Pong(payload)
	default:
		d.done = true
		if len(payload) == 0 {
			h.Close(1005, "")
			return nil
		}
		if len(payload) == 1 {
			return protocolError("close frame with a 1-byte payload")
		}
		code := int(binary.BigEndian.Uint16(payload))
		if !validCloseCode(code) {
			return protocolError("bad close code " + strconv.Itoa(code))
		}
		reason := payload[2:]
		if !utf8.Valid(reason) {
			return &ProtocolError{Code: 1007, Reason: "close reason not utf-8"}
		}
		h.Close(code, string(reason))
	}
	return nil
}

// validCloseCode reports whether a peer may send code (RFC 6455 section
// 7.4): 1004-1006 and 1015 are reserved, 1014 is refused as gorilla refuses
// it (which read per-connection sessions until both modes shared this
// decoder), others below 3000 are unassigned.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}

// unmask XORs b with key, starting at key[0].
func unmask(key [4]byte, b []byte) {
	if len(b) >= 8 {
		k := uint64(binary.LittleEndian.Uint32(key[:]))
		k |= k << 32
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// rotate advances the mask key past n payload bytes.
func (d *Decoder) rotate(n int64) {
	s := int(n & 3)
	var k [4]byte
	for i := range k {
		k[i] = d.mask[(i+s)&3]
	}
	d.mask = k
}
