package broadcast

import (
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Positions: every message of a stream but its end has a place in it,
// EPOCH:SEQ. SEQ counts messages from 1; EPOCH names one history of the
// stream, and changes only when that history is lost (the stream ended, or
// the bus that kept it forgot it), so that a position is compared with its
// epoch, never by SEQ alone. A subscriber that gives the position of the
// last message it has gets exactly the messages after it, when they are
// still in the stream's history (its replay).

// Position is a place in a stream: just after the message Seq of history
// Epoch (Seq 0: before the first).
type Position struct {
	Epoch string
	Seq   uint64
}

// String returns the position as EPOCH:SEQ.
func (p Position) String() string {
	return p.Epoch + ":" + strconv.FormatUint(p.Seq, 10)
}

// AppendText appends EPOCH:SEQ to b.
func (p Position) AppendText(b []byte) []byte {
	b = append(b, p.Epoch...)
	b = append(b, ':')
	return strconv.AppendUint(b, p.Seq, 10)
}

// maxEpoch is the longest epoch a position may name.
const maxEpoch = 64

// Errors of ParsePosition.
var (
	errPositionForm  = errors.New("want EPOCH:SEQ, such as k3v9q2x7m1:42")
	errPositionEpoch = errors.New("the epoch must be 1 to 64 letters and digits")
	errPositionSeq   = errors.New("the sequence number must be decimal digits, at most 2^64-1")
)

// ParsePosition reads EPOCH:SEQ: an epoch of 1 to 64 ASCII letters and
// digits, a colon, and a decimal number.
func ParsePosition(s string) (Position, error) {
	epoch, seq, ok := strings.Cut(s, ":")
	if !ok {
		return Position{}, errPositionForm
	}
	if !validEpoch(epoch) {
		return Position{}, errPositionEpoch
	}
	if seq == "" || len(seq) > 20 || strings.Trim(seq, "0123456789") != "" {
		return Position{}, errPositionSeq
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return Position{}, errPositionSeq
	}
	return Position{Epoch: epoch, Seq: n}, nil
}

// validEpoch reports whether s is 1 to maxEpoch ASCII letters and digits.
func validEpoch(s string) bool {
	if s == "" || len(s) > maxEpoch {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// epochLength is the length of a new epoch: 36^8 is about 2^41, so that
// two histories of one stream never share one, and short, since every line
// a resuming client gets carries it.
const epochLength = 8

// NewEpoch returns a new random epoch: lower-case letters and digits.
func NewEpoch() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [epochLength]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	for i, c := range b {
		b[i] = digits[int(c)%len(digits)]
	}
	return string(b[:])
}

// Tagged is a message as the subscribers that follow positions get it: the
// message with its position in front. The stream does not build it: whoever
// encodes the messages does (Message.Tagged).
type Tagged struct {
	// Data is what those subscribers are sent.
	Data []byte
	// Size is the size of what Data carries, for counting.
	Size int
	// Compressed is Data compressed, no bigger; nil when there is none.
	Compressed []byte
}

// tagging is what a message keeps of its tagged form: made once, on first
// need, for every subscriber that wants it.
type tagging struct {
	tagged atomic.Pointer[Tagged]
	mu     sync.Mutex // held while it is made
}

// Tagged returns the message's tagged form, made by encode the first time it
// is asked for, once for every caller.
func (m *Message) Tagged(encode func(*Message) *Tagged) *Tagged {
	if t := m.tag.tagged.Load(); t != nil {
		return t
	}
	m.tag.mu.Lock()
	defer m.tag.mu.Unlock()
	if t := m.tag.tagged.Load(); t != nil {
		return t
	}
	t := encode(m)
	m.tag.tagged.Store(t)
	return t
}
