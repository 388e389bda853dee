package childin

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/process"
)

// writes records each write a batch makes, as one piece.
type writes [][]byte

func (w *writes) write(p, tail []byte) error {
	*w = append(*w, append(append([]byte(nil), p...), tail...))
	return nil
}

func TestMessagesGoInOneWriteEachALineAndNeverPastTheLimit(t *testing.T) {
	t.Parallel()
	var w writes
	b := &Batch{Write: w.write, Lines: true}
	for i := range 3 {
		if taken, err := b.Add(fmt.Appendf(nil, "m%d", i), true); !taken || err != nil {
			t.Fatalf("Add = %v, %v", taken, err)
		}
	}
	if len(w) != 0 {
		t.Fatalf("%d writes before Flush", len(w))
	}
	if err := b.Flush(); err != nil || len(w) != 1 || string(w[0]) != "m0\nm1\nm2\n" {
		t.Fatalf("Flush = %v, writes %q", err, w)
	}

	// A batch that would pass the limit is written first; a message bigger
	// than the limit goes by itself.
	w = nil
	half := bytes.Repeat([]byte("h"), Limit/2)
	b.Add(half, true)
	b.Add(half, true) // with two newlines, past the limit
	big := bytes.Repeat([]byte("b"), Limit+1)
	b.Add(big, true)
	b.Flush()
	want := []int{Limit/2 + 1, Limit/2 + 1, Limit + 2}
	if len(w) != len(want) {
		t.Fatalf("%d writes, want %d", len(w), len(want))
	}
	for i, n := range want {
		if len(w[i]) != n {
			t.Errorf("write %d has %d bytes, want %d", i, len(w[i]), n)
		}
	}
}

func TestInvalidTextIsRefusedAndWhatCameBeforeStays(t *testing.T) {
	t.Parallel()
	var w writes
	b := &Batch{Write: w.write, Lines: true}
	b.Add([]byte("ok"), true)
	if taken, err := b.Add([]byte{0xff, 'x'}, true); taken || !errors.Is(err, ErrInvalidText) {
		t.Fatalf("Add of invalid UTF-8 = %v, %v", taken, err)
	}
	if taken, err := b.Add([]byte{0xff}, false); !taken || err != nil { // binary: any bytes
		t.Fatalf("Add of a binary message = %v, %v", taken, err)
	}
	b.Flush()
	if len(w) != 1 || string(w[0]) != "ok\n\xff\n" {
		t.Errorf("writes %q", w)
	}
}

func TestAChildThatStoppedReadingGetsNothingMore(t *testing.T) {
	t.Parallel()
	calls := 0
	b := &Batch{Write: func(p, tail []byte) error { calls++; return process.ErrStdinClosed }, Lines: true}
	b.Add([]byte("a"), true)
	if err := b.Flush(); err != nil {
		t.Fatalf("Flush = %v: a closed stdin is not an error", err)
	}
	if b.Open() {
		t.Fatal("still open after the stdin closed")
	}
	if taken, _ := b.Add([]byte("b"), true); taken || b.Pending() != nil {
		t.Fatal("a message was taken for a stdin that is closed")
	}
	b.Flush()
	if calls != 1 {
		t.Errorf("%d writes, want 1", calls)
	}
}
