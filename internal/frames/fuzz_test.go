package frames

import (
	"errors"
	"testing"
)

// fuzzConfig turns the fuzzer's flags byte into a Config: the high bit is
// Deflate, the rest the limit (0 meaning testMax, as in the table cases).
func fuzzConfig(flags byte) Config {
	m := int64(flags&0x7f) * 8
	if m == 0 {
		m = testMax
	}
	return Config{MaxMessage: m, Deflate: flags&0x80 != 0}
}

func FuzzDecoder(f *testing.F) {
	for _, c := range tableCases(f) {
		if len(c.in) > 4000 {
			continue
		}
		var flags byte
		if c.deflate {
			flags = 0x80
		}
		if c.max != 0 && c.max != testMax {
			continue
		}
		f.Add(flags, c.in)
	}
	f.Fuzz(func(t *testing.T, flags byte, in []byte) {
		cfg := fuzzConfig(flags)
		whole := feedPieces(t, cfg, in, nil, &recorder{})

		cuts := make([]int, 0, len(in))
		for i := 1; i < len(in); i++ {
			cuts = append(cuts, i)
		}
		h := &recorder{max: cfg.MaxMessage}
		bytewise := feedPieces(t, cfg, in, cuts, h)

		if !eventsEqual(whole.events, bytewise.events) {
			t.Fatalf("events whole %v\nbyte by byte %v", whole.events, bytewise.events)
		}
		if !sameErr(whole.err, bytewise.err) {
			t.Fatalf("error whole %v, byte by byte %v", whole.err, bytewise.err)
		}
		if whole.buffered != bytewise.buffered {
			t.Fatalf("Buffered whole %v, byte by byte %v", whole.buffered, bytewise.buffered)
		}
		if h.tooBig > 0 {
			t.Fatalf("%d messages over MaxMessage %d", h.tooBig, cfg.MaxMessage)
		}
		if whole.err != nil {
			var pe *ProtocolError
			if !errors.As(whole.err, &pe) || (pe.Code != 1002 && pe.Code != 1007 && pe.Code != 1009) || pe.Reason == "" {
				t.Fatalf("unexpected error %#v", whole.err)
			}
		}
	})
}
