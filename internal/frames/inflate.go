package frames

import (
	"compress/flate"
	"io"
	"math"
	"slices"
	"sync"
)

// inflateTail ends every compressed message. RFC 7692 section 7.2.2 has the
// receiver append 00 00 ff ff (the empty stored block the sender dropped);
// the empty final stored block after it makes flate report io.EOF for a
// message that ends on a block boundary, and an error for one cut short.
var inflateTail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// keepOut is the largest output buffer kept in the pool; larger ones are
// left to the garbage collector so that one big message is not held forever.
const keepOut = 64 << 10

// inflater is a flate reader with its input and output buffer. They are
// pooled, not kept per connection, so an idle connection holds none.
type inflater struct {
	src source
	fr  io.ReadCloser
	out []byte
}

var inflaters = sync.Pool{New: func() any {
	inf := new(inflater)
	inf.fr = flate.NewReader(&inf.src)
	return inf
}}

// source reads a message then inflateTail. It is an io.ByteReader so that
// flate reads it directly instead of wrapping it in a bufio.Reader.
type source struct {
	data, tail []byte
}

func (s *source) next() bool {
	if len(s.data) == 0 {
		s.data, s.tail = s.tail, nil
	}
	return len(s.data) > 0
}

func (s *source) Read(p []byte) (int, error) {
	if !s.next() {
		return 0, io.EOF
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func (s *source) ReadByte() (byte, error) {
	if !s.next() {
		return 0, io.EOF
	}
	b := s.data[0]
	s.data = s.data[1:]
	return b, nil
}

// inflate decompresses the compressed message in and hands it to h. It
// stops after limit+1 bytes of output, so a message that inflates to far
// more than limit costs no more than one of limit+1 bytes.
//
// Corrupt data is refused with 1007 (invalid frame payload data): the frames
// were well formed, it is their payload that does not decode, like a text
// message that is not UTF-8.
func inflate(h Handler, text bool, in []byte, limit int64) error {
	inf := inflaters.Get().(*inflater)
	inf.src = source{data: in, tail: inflateTail[:]}
	if err := inf.fr.(flate.Resetter).Reset(&inf.src, nil); err != nil {
		panic(err) // Reset without a dictionary cannot fail
	}
	lim := math.MaxInt
	if limit < math.MaxInt {
		lim = int(limit) + 1
	}
	out := inf.out[:0]
	var err error
	for {
		if len(out) == cap(out) {
			grow := max(len(out), 2*len(in), 512)
			out = slices.Grow(out, min(grow, lim-len(out)))
		}
		var n int
		n, err = inf.fr.Read(out[len(out):min(cap(out), lim)])
		out = out[:len(out)+n]
		if len(out) == lim {
			err = tooBig()
			break
		}
		if err == io.EOF {
			err = h.Message(text, out)
			break
		}
		if err != nil {
			err = &ProtocolError{Code: 1007, Reason: "bad compressed data"}
			break
		}
	}
	inf.src = source{} // do not retain the caller's chunk
	inf.out = nil
	if cap(out) <= keepOut {
		inf.out = out[:0]
	}
	inflaters.Put(inf)
	return err
}
