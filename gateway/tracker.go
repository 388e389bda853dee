package gateway

import "encoding/binary"

// frameTracker follows the client's frames through the bytes read off the
// connection, to learn what gorilla does not tell: how long the payload of
// the client's first close frame is. An empty payload and a one-byte one
// both reach the close handler as "no status", but RFC 6455 5.5.1 allows
// only none or a two-byte code, so one byte is a protocol error. gorilla
// handles the first close frame it reads and reads no further, so that is
// the one that counts. Only the connection's reader uses a tracker.
type frameTracker struct {
	head      [maxClientHeader]byte
	headLen   int    // header bytes gathered of the current frame
	skip      uint64 // payload bytes of the current frame still to pass
	closeSeen bool   // a close frame's header has been read: nothing more to learn
	closeLen  uint64 // its payload length
}

// maxClientHeader is the longest client frame header: two bytes, an
// eight-byte length and a four-byte mask.
const maxClientHeader = 14

// scan follows the frames through p, the next bytes read.
func (f *frameTracker) scan(p []byte) {
	for len(p) > 0 && !f.closeSeen {
		if f.skip > 0 {
			n := min(f.skip, uint64(len(p)))
			f.skip -= n
			p = p[n:]
			continue
		}
		need := 2
		if f.headLen >= 2 {
			need = clientHeaderSize(f.head[1])
		}
		n := copy(f.head[f.headLen:need], p)
		f.headLen += n
		p = p[n:]
		if f.headLen >= 2 && f.headLen == clientHeaderSize(f.head[1]) {
			f.headerDone()
		}
	}
}

// headerDone takes in the whole header of a frame.
func (f *frameTracker) headerDone() {
	length := uint64(f.head[1] & 0x7f)
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(f.head[2:]))
	case 127:
		length = binary.BigEndian.Uint64(f.head[2:])
	}
	f.headLen = 0
	if f.head[0]&0x0f == opClose {
		f.closeSeen, f.closeLen = true, length
		return
	}
	f.skip = length
}

// closePayload returns the payload length of the client's first close
// frame, and whether one has been read.
func (f *frameTracker) closePayload() (uint64, bool) { return f.closeLen, f.closeSeen }

// clientHeaderSize returns the size of a client frame header whose second
// byte is b1.
func clientHeaderSize(b1 byte) int {
	size := 2
	switch b1 & 0x7f {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if b1&0x80 != 0 {
		size += 4
	}
	return size
}
