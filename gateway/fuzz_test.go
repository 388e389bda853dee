package gateway

// Fuzz targets for everything that parses what a client sends. Each has a
// seed corpus under testdata/fuzz/<name>; scripts/test runs each for a few
// seconds: go test -run '^$' -fuzz='^FuzzName$' -fuzztime=3s ./gateway

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzFrameScan feeds client bytes to the two frame-header scanners: the
// input batcher's (wholeMessageBuffered, frameSize) and the close-payload
// tracker. Neither may panic, frameSize never claims more than it has, and
// the tracker learns the same whatever the size of the reads.
func FuzzFrameScan(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, uint8(1))
	f.Add(joinBytes(tableFrame(true, 16, 300), withFirstByte(0x88, tableFrame(true, 7, 1))), uint8(3))
	f.Add(tableHeader(true, 64, 1<<63), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		if n, ok := frameSize(data); ok && (n < 2 || n > len(data)) {
			t.Fatalf("frameSize(% x) = %d, true: outside the data", data, n)
		}
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		_, _ = br.Peek(min(len(data), 16))
		_ = wholeMessageBuffered(br)

		var whole, pieces frameTracker
		whole.scan(data)
		step := int(split%16) + 1
		for rest := data; len(rest) > 0; rest = rest[min(step, len(rest)):] {
			pieces.scan(rest[:min(step, len(rest))])
		}
		if a, b := whole, pieces; a.closeSeen != b.closeSeen || a.closeLen != b.closeLen {
			t.Fatalf("% x: tracked in one read %+v, in reads of %d %+v", data, a, step, b)
		}
	})
}

// FuzzHeaderEnvName maps header names to variables: a name it keeps gives
// HTTP_ and upper-case letters, digits and underscores, never HTTP_PROXY
// nor HTTP_HOST, and only names of letters, digits and '-' are kept.
func FuzzHeaderEnvName(f *testing.F) {
	for _, name := range []string{"Accept", "X-Forwarded-For", "Proxy", "host", "X_Y", "Ü", "a b", ""} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		env, ok := headerEnvName(name)
		if !ok {
			return
		}
		rest, found := strings.CutPrefix(env, "HTTP_")
		if !found || rest == "" || rest == "PROXY" || rest == "HOST" || strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			t.Fatalf("headerEnvName(%q) = %q", name, env)
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			t.Fatalf("headerEnvName(%q) kept a name with other characters", name)
		}
	})
}
