package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

// knownEnvars returns the WSGATE_ variable of every flag.
func knownEnvars() map[string]bool {
	parser, err := kong.New(&CLI{}, cliOptions()...)
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	for _, flag := range parser.Model.Flags {
		for _, env := range flag.Envs {
			known[env] = true
		}
	}
	return known
}

// commandLineOnlyEnvars name flags that make wsgate print and exit: an
// environment file must not turn a service into one that does.
var commandLineOnlyEnvars = map[string]string{
	envPrefix + "HELP":    "--help",
	envPrefix + "VERSION": "--version",
	envPrefix + "LICENSE": "--license",
}

// envarWarnings says, for each WSGATE_ variable of environ that names no
// flag, that it is ignored and what may have been meant.
func envarWarnings(environ []string, known map[string]bool) []string {
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || known[name] {
			continue
		}
		if flag, ok := commandLineOnlyEnvars[name]; ok {
			warnings = append(warnings, fmt.Sprintf("%s is ignored: %s belongs on the command line only", name, flag))
			continue
		}
		warning := name + " names no flag and is ignored"
		if near := nearestName(name, known); near != "" {
			warning += "; did you mean " + near + "?"
		}
		warnings = append(warnings, warning)
	}
	return warnings
}

// nearestName returns the name of known closest to name, if it is at most
// two edits away.
func nearestName(name string, known map[string]bool) string {
	best, bestDist := "", 3
	for k := range known {
		if d := editDistance(name, k); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// writesToJournal reports whether w is wsgate's stderr connected to
// journald: JOURNAL_STREAM names the device and inode of the stream systemd
// connected, which a redirection by the service itself would change.
func writesToJournal(w any) bool {
	stream := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if stream == "" || !ok {
		return false
	}
	info, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
