package main

import (
	"bytes"
	"fmt"
	"strconv"
)

// What wsgate sends a client that follows positions (?last_event_id=):
// each line as "id: EPOCH:SEQ\n\n" and the line, after a greeting
// "id: EPOCH:SEQ\nevent: joined\n\n" (or "reset").

// tagPosition is a position in a stream.
type tagPosition struct {
	epoch string
	seq   uint64
}

// untag splits a tagged message into its line, its position's epoch (a
// slice of msg: nothing is allocated for each line) and its SEQ, in one
// pass over the header.
func untag(msg []byte) (line, epoch []byte, seq uint64, err error) {
	bad := func() ([]byte, []byte, uint64, error) {
		return nil, nil, 0, fmt.Errorf("message %q is not a line with its position", excerpt(msg, 0))
	}
	if len(msg) < 4 || string(msg[:4]) != "id: " {
		return bad()
	}
	i := 4
	for i < len(msg) && msg[i] != ':' && msg[i] != '\n' {
		i++
	}
	if i == 4 || i >= len(msg) || msg[i] != ':' {
		return bad()
	}
	epoch = msg[4:i]
	j := i + 1
	for ; j < len(msg) && '0' <= msg[j] && msg[j] <= '9'; j++ {
		seq = 10*seq + uint64(msg[j]-'0')
	}
	if j == i+1 || j-i > 20 || j+1 >= len(msg) || msg[j] != '\n' || msg[j+1] != '\n' {
		return bad()
	}
	return msg[j+2:], epoch, seq, nil
}

// greeted reads a greeting that says the subscriber joined, and returns
// its position.
func greeted(msg []byte) (tagPosition, error) {
	head, rest, ok := bytes.Cut(msg, []byte("\n\n"))
	id, event, hasEvent := bytes.Cut(head, []byte("\nevent: "))
	id, isID := bytes.CutPrefix(id, []byte("id: "))
	if !ok || !isID || !hasEvent || string(event) != "joined" || len(rest) > 0 {
		return tagPosition{}, fmt.Errorf("greeting %q, want id: EPOCH:SEQ and event: joined", excerpt(msg, 0))
	}
	return parseTagPosition(id)
}

// parseTagPosition reads EPOCH:SEQ.
func parseTagPosition(id []byte) (tagPosition, error) {
	epoch, seq, ok := bytes.Cut(id, []byte(":"))
	n, err := strconv.ParseUint(string(seq), 10, 64)
	if !ok || len(epoch) == 0 || err != nil {
		return tagPosition{}, fmt.Errorf("position %q is not EPOCH:SEQ", id)
	}
	return tagPosition{epoch: string(epoch), seq: n}, nil
}
