package main

import (
	"slices"
	"strings"
	"testing"
)

// FuzzWebsocketdArgs rewrites fuzzed command lines (arguments separated by
// newlines): nothing panics, the result is never longer, and everything
// from the command on (the first argument that is not a flag, or "--") is
// passed on untouched. scripts/test runs it for a few seconds:
// go test -run '^$' -fuzz='^FuzzWebsocketdArgs$' -fuzztime=3s .
func FuzzWebsocketdArgs(f *testing.F) {
	for _, line := range []string{
		"-port=8080\n-binary=true\ncat",
		"-port\n8080\n--\n-x",
		"--binary=false\n-h\ntail\n-f\nx.log",
		"-\n-a=b=c\n--=\n-devconsole=0",
		"-address\n",
	} {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\n")
		out := websocketdArgs(args)
		if len(out) > len(args) {
			t.Fatalf("websocketdArgs(%q) = %q: longer", args, out)
		}
		cmd := commandStart(args)
		if tail := args[cmd:]; len(out) < len(tail) || !slices.Equal(out[len(out)-len(tail):], tail) {
			t.Fatalf("websocketdArgs(%q) = %q: the command %q is not passed on as it was", args, out, tail)
		}
	})
}

// commandStart returns the index of the first argument websocketdArgs must
// leave alone: "--", "-", or one not starting with '-' that is no flag's
// value.
func commandStart(args []string) int {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" || arg == "-" || !strings.HasPrefix(arg, "-") {
			return i
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if len(name) >= 2 || strings.HasPrefix(arg, "--") {
			if !hasValue && !boolFlags[name] {
				i++ // its value
			}
		}
	}
	return len(args)
}
