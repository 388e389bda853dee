package redisbus

import (
	"encoding/binary"
	"errors"

	"github.com/wsgate/wsgate/broadcast"
)

// An entry is one message of a stream as it travels through Redis: in the
// replay list one entry per element, on the output channel the entries of
// one publication one after the other. Its header:
//
//	seq   uint64  the message's place in the stream, from 1
//	flags byte    flagLast for the message that ends the stream
//	size  uint32  broadcast.Message.Size
//	len   uint32  the length of the data that follows
const (
	entryHeader = 8 + 1 + 4 + 4
	flagLast    = 1
)

// errBadEntry reports an entry that does not decode: another program, or
// another version of wsgate, uses the same keys.
var errBadEntry = errors.New("malformed entry in Redis: is another program using the bus's keys?")

// appendEntry appends m as entry seq.
func appendEntry(b []byte, seq uint64, m *broadcast.Message) []byte {
	var flags byte
	if m.Last {
		flags = flagLast
	}
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, uint32(m.Size))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Data)))
	return append(b, m.Data...)
}

// nextEntry decodes the entry at the start of s and returns the rest.
func nextEntry(s string) (seq uint64, m *broadcast.Message, rest string, err error) {
	if len(s) < entryHeader {
		return 0, nil, "", errBadEntry
	}
	seq = binary.BigEndian.Uint64([]byte(s[:8]))
	flags := s[8]
	size := binary.BigEndian.Uint32([]byte(s[9:13]))
	n := binary.BigEndian.Uint32([]byte(s[13:17]))
	s = s[entryHeader:]
	if uint64(n) > uint64(len(s)) {
		return 0, nil, "", errBadEntry
	}
	m = &broadcast.Message{Data: []byte(s[:n]), Size: int(size), Last: flags&flagLast != 0}
	return seq, m, s[n:], nil
}
