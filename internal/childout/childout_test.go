package childout

import (
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// sameArray reports whether a and b share their first element.
func sameArray(a, b []byte) bool {
	if cap(a) == 0 || cap(b) == 0 {
		return cap(a) == cap(b)
	}
	return &a[:1][0] == &b[:1][0]
}

func TestValidTextTable(t *testing.T) {
	t.Parallel()
	const r = "\uFFFD"
	cases := []struct {
		name         string
		scratch      []byte
		prior        string // validated first with scratch; its scratch is then used
		text         string
		want         string
		wantReplaced bool
		wantScratch  bool // the result is built in scratch's array
	}{
		{name: "empty is valid", text: "", want: ""},
		{name: "ASCII is valid", text: "hello", want: "hello"},
		{name: "multi-byte is valid", text: "héllo €😀", want: "héllo €😀"},
		{name: "literal U+FFFD is valid", text: r, want: r},
		{name: "NUL is valid", text: "a\x00b", want: "a\x00b"},
		{name: "lone invalid byte", text: "\xff", want: r, wantReplaced: true},
		{name: "invalid byte between text", text: "a\xffb", want: "a" + r + "b", wantReplaced: true},
		{name: "lone continuation byte", text: "a\x80b", want: "a" + r + "b", wantReplaced: true},
		{name: "truncated 2-byte character at the end", text: "abc\xc3", want: "abc" + r, wantReplaced: true},
		{name: "truncated 3-byte character gives one U+FFFD per byte", text: "abc\xe2\x82", want: "abc" + r + r, wantReplaced: true},
		{name: "truncated 4-byte character in the middle", text: "a\xf0\x9f\x98b", want: "a" + r + r + r + "b", wantReplaced: true},
		{name: "overlong NUL", text: "\xc0\x80", want: r + r, wantReplaced: true},
		{name: "UTF-16 surrogate", text: "\xed\xa0\x80", want: r + r + r, wantReplaced: true},
		{name: "above U+10FFFF", text: "\xf4\x90\x80\x80", want: r + r + r + r, wantReplaced: true},
		{name: "valid characters around invalid kept", text: "é\xffé", want: "é" + r + "é", wantReplaced: true},
		{name: "literal U+FFFD next to invalid byte", text: r + "\xff", want: r + r, wantReplaced: true},
		{
			name: "built in roomy scratch over stale bytes", scratch: append(make([]byte, 0, 64), "stale"...),
			text: "a\xffb", want: "a" + r + "b", wantReplaced: true, wantScratch: true,
		},
		{
			name: "small scratch grows", scratch: make([]byte, 0, 2),
			text: "abc\xff", want: "abc" + r, wantReplaced: true,
		},
		{
			name: "valid text leaves scratch alone", scratch: append(make([]byte, 0, 64), "stale"...),
			text: "fine", want: "fine",
		},
		{
			name: "scratch from a previous call is reused", prior: strings.Repeat("x\xff", 20),
			text: "y\xff", want: "y" + r, wantReplaced: true, wantScratch: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			scratch := c.scratch
			if c.prior != "" {
				var replaced bool
				_, scratch, replaced = validText([]byte(c.prior), scratch)
				if !replaced {
					t.Fatalf("set-up: prior %q needed no replacement", c.prior)
				}
			}
			text := []byte(c.text)
			got, gotScratch, replaced := validText(text, scratch)
			if string(got) != c.want || replaced != c.wantReplaced {
				t.Errorf("validText(%q) = %q, %v; want %q, %v", c.text, got, replaced, c.want, c.wantReplaced)
			}
			if !replaced {
				if len(got) > 0 && !sameArray(got, text) {
					t.Errorf("valid text was copied")
				}
				if !sameArray(gotScratch, scratch) || len(gotScratch) != len(scratch) {
					t.Errorf("scratch changed for valid text: %q", gotScratch)
				}
				return
			}
			if !sameArray(gotScratch, got) || len(gotScratch) != len(got) {
				t.Errorf("returned scratch %q is not the result %q", gotScratch, got)
			}
			if inScratch := sameArray(got, scratch); inScratch != c.wantScratch {
				t.Errorf("result built in the given scratch: %v, want %v", inScratch, c.wantScratch)
			}
		})
	}
}

func TestRuneCutTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		want int
	}{
		{"empty", "", 0},
		{"ASCII whole", "abc", 3},
		{"whole 2-byte character", "a\xc3\xa9", 3},
		{"first byte of a 2-byte character held back", "a\xc3", 1},
		{"whole 3-byte character", "a\xe2\x82\xac", 4},
		{"two bytes of a 3-byte character held back", "a\xe2\x82", 1},
		{"one byte of a 3-byte character held back", "a\xe2", 1},
		{"whole 4-byte character", "\xf0\x9f\x98\x80", 4},
		{"three bytes of a 4-byte character held back", "\xf0\x9f\x98", 0},
		{"incomplete character after a whole one", "\xe2\x82\xac\xe2", 3},
		{"lone continuation byte kept", "a\x80", 2},
		{"invalid byte kept", "a\xff", 2},
		{"invalid second byte kept", "\xe0\x80", 2},
		{"surrogate lead kept as not incomplete", "\xed\xa0", 2},
		{"above U+10FFFF lead kept as not incomplete", "\xf4\x90", 2},
		{"start byte followed by ASCII kept", "\xc3a", 2},
		{"more than 4 continuation bytes kept", "\x80\x80\x80\x80\x80", 5},
		{"invalid lead and continuation bytes kept", "\xf0\x80\x80\x80\x80", 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := runeCut([]byte(c.data)); got != c.want {
				t.Errorf("runeCut(%q) = %d, want %d", c.data, got, c.want)
			}
		})
	}
}

func TestSafeCutTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		want int
	}{
		{"empty", "", 0},
		{"plain text all sent", "abc", 3},
		{"trailing CR held back", "abc\r", 3},
		{"lone CR held back", "\r", 0},
		{"only the last of two CRs held back", "abc\r\r", 4},
		{"CR inside sent", "a\rb", 3},
		{"CR LF at the end sent", "abc\r\n", 5},
		{"incomplete character held back", "ab\xc3", 2},
		{"CR before an incomplete character held back too", "ab\r\xc3", 2},
		{"CR before an incomplete 3-byte character held back too", "\r\xe2\x82", 0},
		{"complete character after CR sent", "ab\r\xc3\xa9", 5},
		{"invalid trailing byte sent", "ab\xff", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := safeCut([]byte(c.data)); got != c.want {
				t.Errorf("safeCut(%q) = %d, want %d", c.data, got, c.want)
			}
		})
	}
}

// discard is an Out that takes every frame.
type discard struct{}

func (discard) Frame(byte, bool, []byte, bool) error { return nil }
func (discard) Flush() error                         { return nil }
func (discard) Failed(err error) error               { return err }
func (discard) Streams() bool                        { return true }

// Each whole line of stderr is counted once, in every mode: a line split
// across writes, one logged in pieces, and a last one without a newline.
func TestStderrLinesAreCountedOncePerLine(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"text", Config{}}, {"binary", Config{Binary: true}}, {"passstderr", Config{PassStderr: true}}} {
		t.Run(c.name, func(t *testing.T) {
			var lines int
			cfg := c.cfg
			cfg.Out, cfg.MaxLine, cfg.Log, cfg.Replaced = discard{}, 1<<20, slog.New(slog.DiscardHandler), new(atomic.Bool)
			cfg.StderrLine = func() { lines++ }
			_, stderr := Writers(cfg)
			for _, p := range []string{"one\ntw", "o\n", strings.Repeat("x", stderrRecordSize+10) + "\n", "last"} {
				if _, err := stderr.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			if err := stderr.(io.Closer).Close(); err != nil {
				t.Fatal(err)
			}
			if lines != 4 {
				t.Errorf("%d lines counted, want 4", lines)
			}
		})
	}
}
