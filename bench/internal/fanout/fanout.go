// Package fanout is the protocol between the benchmark's fan-out producer
// (bench/producer), which runs as the one shared child of a broadcast
// server, and the runner's subscribers, which are that server's clients.
//
// The producer writes lines to stdout; the server sends each to every
// subscriber. Subscribers write messages that the server passes, one line
// each, to the producer's stdin:
//
//	subscriber -> producer      producer -> every subscriber
//	hello ID                    ready             (once every ID has said hello)
//	go                          SEQ STAMP PAD     (lines 1, 2, ... after go)
//	ack ID SEQ
//
// A subscriber says hello once it is connected. The producer answers
// "ready" when it has heard from every subscriber, so that every one of them
// has joined the stream before anything numbered is printed. One "go" starts
// the numbered lines. Each line carries its number, the producer's clock
// when it was printed (Unix nanoseconds) and a padding that depends on the
// number, so that a subscriber can check every byte it receives and time
// each line. Acks tell the producer how far each subscriber has read; in
// credit mode it stays within a window of the slowest one.
package fanout

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Ready is the line the producer prints once every subscriber has said hello.
const Ready = "ready"

// Go is the message that starts the numbered lines.
const Go = "go"

// AppendHello appends subscriber id's hello message to buf.
func AppendHello(buf []byte, id int) []byte {
	return strconv.AppendInt(append(buf, "hello "...), int64(id), 10)
}

// AppendAck appends the message saying subscriber id has read every line up
// to seq.
func AppendAck(buf []byte, id int, seq int64) []byte {
	buf = strconv.AppendInt(append(buf, "ack "...), int64(id), 10)
	return strconv.AppendInt(append(buf, ' '), seq, 10)
}

// Message is one subscriber message as the producer reads it.
type Message struct {
	Kind string // "hello", "ack" or "go"
	ID   int    // hello and ack
	Seq  int64  // ack
}

// ParseMessage reads one subscriber message, without its newline.
func ParseMessage(line []byte) (Message, error) {
	fields := bytes.Fields(line)
	if len(fields) == 0 {
		return Message{}, errors.New("empty message")
	}
	m := Message{Kind: string(fields[0])}
	var err error
	switch {
	case m.Kind == Go && len(fields) == 1:
	case m.Kind == "hello" && len(fields) == 2:
		m.ID, err = strconv.Atoi(string(fields[1]))
	case m.Kind == "ack" && len(fields) == 3:
		m.ID, err = strconv.Atoi(string(fields[1]))
		if err == nil {
			m.Seq, err = strconv.ParseInt(string(fields[2]), 10, 64)
		}
	default:
		return Message{}, fmt.Errorf("unknown message %q", line)
	}
	if err != nil {
		return Message{}, fmt.Errorf("message %q: %w", line, err)
	}
	return m, nil
}

// AppendLine appends numbered line seq, stamped with stamp (Unix
// nanoseconds), without its newline: "SEQ STAMP " then letters that shift
// with seq, up to size bytes (a longer number and stamp are not cut).
func AppendLine(buf []byte, seq, stamp int64, size int) []byte {
	start := len(buf)
	buf = strconv.AppendInt(buf, seq, 10)
	buf = strconv.AppendInt(append(buf, ' '), stamp, 10)
	buf = append(buf, ' ')
	for i := len(buf) - start; i < size; i++ {
		buf = append(buf, padByte(seq, i))
	}
	return buf
}

// padByte is the padding at offset i of line seq.
func padByte(seq int64, i int) byte { return byte('a' + (seq+int64(i))%26) }

// ParseLine checks that line is a numbered line of the given size, padding
// included, and returns its number and stamp.
func ParseLine(line []byte, size int) (seq, stamp int64, err error) {
	seqText, rest, ok1 := bytes.Cut(line, []byte{' '})
	stampText, pad, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("not a numbered line: %q", excerpt(line))
	}
	if seq, err = parseInt(seqText); err != nil {
		return 0, 0, fmt.Errorf("line number: %w", err)
	}
	if stamp, err = parseInt(stampText); err != nil {
		return 0, 0, fmt.Errorf("line %d: stamp: %w", seq, err)
	}
	off := len(line) - len(pad) // where the padding starts
	if want := max(size, off); len(line) != want {
		return 0, 0, fmt.Errorf("line %d: %d bytes, want %d", seq, len(line), want)
	}
	for i, b := range pad {
		if b != padByte(seq, off+i) {
			return 0, 0, fmt.Errorf("line %d: wrong padding at byte %d: %q", seq, off+i, excerpt(line[off+i:]))
		}
	}
	return seq, stamp, nil
}

// parseInt reads a non-negative decimal that is all digits (no sign), so
// that two spellings of one line cannot both pass. It does not allocate,
// unlike strconv.ParseInt(string(b)), because subscribers call it for every
// line they receive.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	var n int64
	for _, c := range b {
		d := int64(c - '0')
		if c < '0' || c > '9' || n > (math.MaxInt64-d)/10 {
			return 0, fmt.Errorf("bad number %q", excerpt(b))
		}
		n = n*10 + d
	}
	return n, nil
}

// excerpt is at most 40 bytes of b, for error messages.
func excerpt(b []byte) []byte { return b[:min(len(b), 40)] }
