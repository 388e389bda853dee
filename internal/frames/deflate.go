package frames

import (
	"bytes"
	"compress/flate"
	"io"
	"runtime"
)

// permessage-deflate (RFC 7692) as wsgate speaks it. gorilla negotiates it
// (Upgrader.EnableCompression: "server_no_context_takeover;
// client_no_context_takeover"), seeing only the offers wsgate can accept
// (offersForGorilla); internal/frames decompresses what clients send; the
// frames to clients are wsgate's own, compressed here. Without context
// takeover each message is compressed on its own, so a message's frame
// depends on nothing but its payload: broadcast mode can compress a line
// once for every client.
//
// A line streamed in several frames (longer than half a batch) is
// compressed too, each frame's part on its own: a compressor is held only
// while one payload is compressed, never while a line waits for its end.

const (
	// deflateLevel is flate.BestSpeed: resetting a compressor at that level
	// costs nothing, where the others clear 640 KiB of tables, once per
	// message without context takeover. gorilla's default level is the same.
	deflateLevel = flate.BestSpeed
	// MinDeflateSize is the shortest payload worth compressing. Measured on
	// JSON and log lines: under 100 bytes nothing shrinks, at 128 about a
	// tenth goes, while each message costs several µs of CPU whatever its
	// size (compress/flate builds Huffman tables for every block).
	MinDeflateSize = 128
	// RSV1Bit marks the first frame of a compressed message.
	RSV1Bit = 0x40
	// DeflateSlack bounds how much bigger than its payload a compressed
	// frame's payload can be, for a payload of less than 128 KiB: what does
	// not shrink goes in stored blocks of 5-byte headers, and a sync flush
	// adds an empty one and a byte of padding.
	DeflateSlack = 16
)

// deflateTail is what a sync flush ends with, and what RFC 7692 has the
// sender cut from the end of a message and the receiver put back.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// compressors keeps flate writers between messages. Each holds about 1 MiB
// of tables and buffers, so no more are kept than can run at once; one is
// taken only for as long as one payload is compressed, so an idle session
// holds none, and more than GOMAXPROCS exist only while that many compress
// at the same moment.
var compressors = make(chan *flate.Writer, runtime.GOMAXPROCS(0))

// appendDeflated appends payload compressed on its own: a raw DEFLATE stream
// ended by a sync flush, whose tail is cut when last (the end of the
// message). Parts compressed so are one valid stream when concatenated.
func appendDeflated(dst, payload []byte, last bool) []byte {
	out := &appendWriter{b: dst}
	var fw *flate.Writer
	select {
	case fw = <-compressors:
		fw.Reset(out)
	default:
		fw, _ = flate.NewWriter(out, deflateLevel) // an error only for a bad level
	}
	_, _ = fw.Write(payload) // appendWriter never fails
	_ = fw.Flush()
	fw.Reset(io.Discard) // keep no reference to out's buffer
	select {
	case compressors <- fw:
	default: // enough are kept
	}
	if last && bytes.HasSuffix(out.b, deflateTail) {
		out.b = out.b[:len(out.b)-len(deflateTail)]
	}
	return out.b
}

// appendWriter appends what is written to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// AppendMessage appends payload as a whole message of opcode op in one
// frame: with deflate, compressed (RSV1 set) when that makes it smaller,
// else as it is. The frame depends on op, payload and deflate alone, so a
// message can be framed once and the frame written to any number of clients.
func AppendMessage(dst []byte, op byte, payload []byte, deflate bool) []byte {
	if deflate && len(payload) >= MinDeflateSize {
		start := len(dst)
		dst = AppendDeflatedFrame(dst, op, true, payload)
		var header [MaxHeader]byte
		if len(dst)-start < len(AppendHeader(header[:0], op, true, len(payload)))+len(payload) {
			return dst
		}
		dst = dst[:start]
	}
	return append(AppendHeader(dst, op, true, len(payload)), payload...)
}

// AppendDeflatedFrame appends one frame of a compressed message: its part
// of the payload compressed on its own, RSV1 on the message's first frame
// (op not a continuation), the tail cut on its last (fin).
func AppendDeflatedFrame(dst []byte, op byte, fin bool, payload []byte) []byte {
	if op != OpContinuation {
		op |= RSV1Bit
	}
	start := len(dst)
	dst = appendDeflated(append(dst, make([]byte, MaxHeader)...), payload, fin)
	// The payload went after room for the longest header: move it up to
	// the header it needs.
	body := start + MaxHeader
	n := len(dst) - body
	var header [MaxHeader]byte
	h := AppendHeader(header[:0], op, fin, n)
	copy(dst[start+len(h):], dst[body:])
	copy(dst[start:], h)
	return dst[:start+len(h)+n]
}

// AcceptsDeflate reports whether resp, a handshake response as gorilla
// writes it, accepts permessage-deflate. Reading gorilla's answer, rather
// than judging the request again, keeps what wsgate writes and decodes in
// step with what gorilla negotiated.
func AcceptsDeflate(resp []byte) bool {
	head, _, _ := bytes.Cut(resp, []byte("\r\n\r\n"))
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Extensions")) &&
			bytes.Contains(value, []byte("permessage-deflate")) {
			return true
		}
	}
	return false
}
