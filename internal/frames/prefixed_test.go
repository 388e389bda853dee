package frames

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrefixedTextIsOneTextFrameOfPrefixThenText(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 100, 200, 70000} { // one-byte, two-byte and eight-byte lengths
		prefix, text := []byte("id: e:7\n\n"), bytes.Repeat([]byte("a"), n)
		frame, compressed, size := PrefixedText(prefix, text, false)
		want := AppendMessage(nil, OpText, append(append([]byte(nil), prefix...), text...), false)
		if !bytes.Equal(frame, want) || size != len(prefix)+n || compressed != nil {
			t.Errorf("n=%d: frame of %d bytes (want %d), size %d, compressed %v", n, len(frame), len(want), size, compressed != nil)
		}
		_, compressed, _ = PrefixedText(prefix, text, true)
		if n >= 200 && (compressed == nil || compressed[0]&RSV1Bit == 0 || len(compressed) >= len(frame)) {
			t.Errorf("n=%d: no smaller compressed frame", n)
		}
	}
	if _, compressed, _ := PrefixedText([]byte("id: x\n\n"), []byte(strings.Repeat("q", 3)), true); compressed != nil {
		t.Error("a compressed frame that is not smaller is kept")
	}
}
