package fanout

import (
	"strings"
	"testing"
)

func TestLineRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 64, 200} {
		for _, seq := range []int64{1, 25, 26, 123456} {
			line := AppendLine(nil, seq, 1_700_000_000_123_456_789, size)
			if size > 40 && len(line) != size {
				t.Errorf("size %d, seq %d: line is %d bytes", size, seq, len(line))
			}
			gotSeq, gotStamp, err := ParseLine(line, size)
			if err != nil || gotSeq != seq || gotStamp != 1_700_000_000_123_456_789 {
				t.Errorf("ParseLine(%q) = %d, %d, %v", line, gotSeq, gotStamp, err)
			}
		}
	}
}

func TestParseLineCatchesDamage(t *testing.T) {
	good := string(AppendLine(nil, 7, 99, 64))
	cases := map[string]string{
		"short":          good[:len(good)-1],
		"long":           good + "x",
		"wrong padding":  good[:len(good)-1] + "?",
		"other line pad": strings.Replace(good, "7 ", "8 ", 1),
		"signed number":  "+" + good[1:],
		"no stamp":       "7",
		"empty":          "",
		"overflow":       "99999999999999999999 1 " + good[len(good)-3:],
	}
	for name, line := range cases {
		if _, _, err := ParseLine([]byte(line), 64); err == nil {
			t.Errorf("%s: ParseLine(%q) accepted it", name, line)
		}
	}
}

func TestMessages(t *testing.T) {
	cases := []struct {
		text string
		want Message
	}{
		{string(AppendHello(nil, 42)), Message{Kind: "hello", ID: 42}},
		{string(AppendAck(nil, 3, 1024)), Message{Kind: "ack", ID: 3, Seq: 1024}},
		{Go, Message{Kind: "go"}},
	}
	for _, c := range cases {
		got, err := ParseMessage([]byte(c.text))
		if err != nil || got != c.want {
			t.Errorf("ParseMessage(%q) = %+v, %v; want %+v", c.text, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "hello", "hello x", "ack 1", "ack 1 x", "go now", "bye 1"} {
		if _, err := ParseMessage([]byte(bad)); err == nil {
			t.Errorf("ParseMessage(%q) accepted it", bad)
		}
	}
}
