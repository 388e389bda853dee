package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// generated is what wsgate --generate=what prints.
func generated(t *testing.T, what string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run([]string{"--generate=" + what}, &out, &errOut); code != exitOK {
		t.Fatalf("--generate=%s: exit %d, stderr %q", what, code, errOut.String())
	}
	return out.String()
}

// generatedFile writes what --generate=what prints to dir/name and returns
// the path.
func generatedFile(t *testing.T, what, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(generated(t, what)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// needProgram returns the path of a program the test runs.
func needProgram(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, name)
	}
	return path
}

// missing fails the test under CI, which installs what the tests need
// (.ci/run), and skips it elsewhere.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: .ci/run installs it", what)
	}
	t.Skipf("%s not found (apt-get install it; under CI=true this fails)", what)
}

// runWithin runs a program for at most a minute, failing the test if it
// fails, and returns its standard output.
func runWithin(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out.String(), errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("%s %q wrote to stderr:\n%s", name, args, errOut.String())
	}
	return out.String()
}

// helpFlags are the flags --help lists, without their dashes.
func helpFlags(t *testing.T) []string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != exitOK {
		t.Fatalf("--help: exit %d, stderr %q", code, errOut.String())
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z][a-z-]*)`).FindAllStringSubmatch(out.String(), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) < 10 {
		t.Fatalf("found only %q in --help:\n%s", flags, out.String())
	}
	return flags
}

// The man page's options are --help's flags, no more and no fewer.
func TestManPageListsTheFlagsOfHelp(t *testing.T) {
	t.Parallel()
	var inMan []string
	for _, m := range regexp.MustCompile(`(?m)^\.TP\n(?:\\fB\\-\w\\fR, )?\\fB\\-\\-([a-z\\-]+)\\fR`).FindAllStringSubmatch(generated(t, "man"), -1) {
		inMan = append(inMan, strings.ReplaceAll(m[1], `\-`, "-"))
	}
	if want := helpFlags(t); !slices.Equal(inMan, want) {
		t.Errorf("man page options %q\nwant --help's %q", inMan, want)
	}
}

// Every flag of the kong model is in the man page, each completion and
// the environment file; the hidden --generate is in none of them.
func TestGeneratedFilesNameEveryFlag(t *testing.T) {
	t.Parallel()
	app, err := cliModel()
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for what := range generators {
		outputs[what] = generated(t, what)
	}
	wordOf := func(s string) string { return `(^|[\s'|()*])` + regexp.QuoteMeta(s) + `($|[\s'|)=\[])` }
	for _, flag := range app.Flags {
		patterns := map[string]string{
			"man":  wordOf(`\fB\-\-` + strings.ReplaceAll(flag.Name, "-", `\-`) + `\fR`),
			"bash": wordOf("--" + flag.Name),
			"zsh":  wordOf("--" + flag.Name),
			"fish": wordOf("-l " + flag.Name),
		}
		for _, env := range flag.Envs {
			patterns["envfile"] = `(?m)^#` + regexp.QuoteMeta(env) + `=`
		}
		for what, pattern := range patterns {
			found := regexp.MustCompile(pattern).MatchString(outputs[what])
			switch {
			case flag.Hidden && found:
				t.Errorf("--generate=%s names the hidden --%s", what, flag.Name)
			case !flag.Hidden && !found:
				t.Errorf("--generate=%s does not name --%s (no match for %s)", what, flag.Name, pattern)
			}
		}
	}
}

// man renders the page without a warning.
func TestManPageRendersWithoutWarnings(t *testing.T) {
	t.Parallel()
	man := needProgram(t, "man")
	page := generatedFile(t, "man", t.TempDir(), "wsgate.1")
	text := runWithin(t, []string{"MANWIDTH=80", "LC_ALL=C.UTF-8", "MANPAGER=cat"}, man, "--warnings", "-l", page)
	for _, want := range []string{"NAME", "SYNOPSIS", "OPTIONS", "ENVIRONMENT", "EXIT STATUS"} {
		if !strings.Contains(text, want) {
			t.Errorf("man -l output has no %s section", want)
		}
	}
}

// A reader can copy every flag from the page into a shell: its dashes are
// ASCII even where groff renders a plain "-" as a hyphen (U+2010), which
// Debian's groff does not, so the test makes it.
func TestManPageDashesAreASCII(t *testing.T) {
	t.Parallel()
	groff := needProgram(t, "groff")
	dir := t.TempDir()
	page := filepath.Join(dir, "hyphens.1")
	if err := os.WriteFile(page, []byte(".tr -\\[u2010]\n"+generated(t, "man")), 0o644); err != nil {
		t.Fatal(err)
	}
	text := runWithin(t, []string{"LC_ALL=C.UTF-8"}, groff, "-man", "-Tutf8", "-ww", "-rLL=200n", page)
	text = regexp.MustCompile(`.\x08`).ReplaceAllString(text, "") // overstrikes for bold
	for _, flag := range helpFlags(t) {
		if !strings.Contains(text, "--"+flag) {
			t.Errorf("the page has no --%s in ASCII dashes", flag)
		}
	}
}

// bashCompletions runs the generated bash completion on each command line
// (the words as bash splits them, the cursor in the last) and returns the
// candidates of each, sorted, each followed by "|".
func bashCompletions(t *testing.T, withBashCompletion bool, lines [][]string) []string {
	t.Helper()
	bash := needProgram(t, "bash")
	var script strings.Builder
	if withBashCompletion {
		script.WriteString("source /usr/share/bash-completion/bash_completion || exit 1\n")
	}
	script.WriteString("source " + shellQuote(generatedFile(t, "bash", t.TempDir(), "wsgate")) + " || exit 1\n")
	for _, words := range lines {
		script.WriteString("COMP_WORDS=(" + strings.Join(quoteEach(words), " ") + ")\n")
		script.WriteString(`COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()` + "\n")
		script.WriteString(`_wsgate 2>/dev/null; ((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}" | sort -u | tr '\n' '|'; echo` + "\n")
	}
	programs := t.TempDir()
	if err := os.WriteFile(filepath.Join(programs, "wsgate-test-program"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := runWithin(t, []string{"PATH=" + programs + ":" + os.Getenv("PATH")}, bash, "--norc", "--noprofile", "-c", script.String())
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("%d answers for %d command lines:\n%s", len(got), len(lines), out)
	}
	return got
}

func quoteEach(words []string) []string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return quoted
}

// The bash completion offers flags until the command, the values of an
// enum flag in each way of writing it, directories for --dir, programs for
// the command, and nothing of wsgate's after it.
func TestBashCompletionCompletes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, sub := range []string{"scripts", "static", "some dir"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		words []string
		want  string
	}{
		{[]string{"wsgate", "--logl"}, "--loglevel|"},
		{[]string{"wsgate", "--loglevel", "="}, "access|debug|error|fatal|info|trace|warn|"},
		{[]string{"wsgate", "--loglevel", "=", "de"}, "debug|"},
		{[]string{"wsgate", "--loglevel", "e"}, "error|"},
		{[]string{"wsgate", "--port", "=", "80", "--logf"}, "--logformat|"},
		{[]string{"wsgate", "--port", "80", "--ssl", "--logf"}, "--logformat|"},
		{[]string{"wsgate", "--port", ""}, ""},
		{[]string{"wsgate", "--dir", "=", dir + "/s"}, dir + "/scripts|" + dir + "/some dir|" + dir + "/static|"},
		{[]string{"wsgate", "--port", "=", "80", "wsgate-test-pr"}, "wsgate-test-program|"},
		{[]string{"wsgate", "cat", "--logl"}, ""},
		{[]string{"wsgate", "--", "cat", "--logl"}, ""},
	}
	var lines [][]string
	for _, c := range cases {
		lines = append(lines, c.words)
	}
	for i, got := range bashCompletions(t, false, lines) {
		if got != cases[i].want {
			t.Errorf("%q: completions %q, want %q", cases[i].words, got, cases[i].want)
		}
	}
}

// With bash-completion loaded, the command's arguments are completed as
// that command's own.
func TestBashCompletionHandsTheCommandItsOwnCompletion(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		missing(t, "bash-completion")
	}
	got := bashCompletions(t, true, [][]string{{"wsgate", "--port", "80", "wsgate", "--logf"}})
	if got[0] != "--logformat|" {
		t.Errorf("completions %q, want wsgate's own --logformat, as the command", got[0])
	}
}

// fish offers the flags, an enum's values and nothing of wsgate's after the
// command.
func TestFishCompletionCompletes(t *testing.T) {
	t.Parallel()
	fish := needProgram(t, "fish")
	file := generatedFile(t, "fish", t.TempDir(), "wsgate.fish")
	cases := map[string]string{
		"wsgate --logl":               "--loglevel",
		"wsgate --logformat=":         "--logformat=json --logformat=text",
		"wsgate --port 80 --logf":     "--logformat",
		"wsgate --port 80 cat --logf": "",
	}
	for line, want := range cases {
		out := runWithin(t, nil, fish, "--no-config", "-c", "source "+shellQuote(file)+"; complete -C "+shellQuote(line))
		var got []string
		for _, candidate := range strings.Split(strings.TrimSpace(out), "\n") {
			if name, _, _ := strings.Cut(candidate, "\t"); name != "" {
				got = append(got, name)
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%q: completions %q, want %q", line, got, want)
		}
	}
}

// zshDriver types a command line and a tab into an interactive zsh whose
// fpath holds the generated completion, and prints what the terminal shows
// once it shows $WANT, or after twenty seconds.
const zshDriver = `
setopt extendedglob
zmodload zsh/zpty || exit 1
zpty z zsh -f -i
zpty -w z 'PS1=""; fpath=("$COMPLETION_DIR" $fpath); autoload -U compinit; compinit -u -D; zstyle ":completion:*" list-prompt ""; unsetopt beep'
zpty -w -n z "$LINE"$'\t'
screen=""
for i in {1..200}; do
  while zpty -r -t z chunk; do screen+=$chunk; done
  [[ ${screen//$'\e'\[[0-9;?]#[a-zA-Z]/} == *"$WANT"* ]] && break
  sleep 0.1
done
zpty -d z
print -r -- ${screen//$'\e'\[[0-9;?]#[a-zA-Z]/}
`

// zsh completes through the _arguments spec: an enum's values are listed,
// a flag's name is completed.
func TestZshCompletionCompletes(t *testing.T) {
	t.Parallel()
	zsh := needProgram(t, "zsh")
	dir := t.TempDir()
	generatedFile(t, "zsh", dir, "_wsgate")
	cases := []struct {
		line, waitFor string
		want          *regexp.Regexp
	}{
		{"wsgate --loglevel=", "warn", regexp.MustCompile(`access +debug +error +fatal +info +trace +warn`)},
		{"wsgate --logfo", "--logformat=", regexp.MustCompile(`wsgate --logformat=`)},
	}
	for _, c := range cases {
		env := []string{"COMPLETION_DIR=" + dir, "LINE=" + c.line, "WANT=" + c.waitFor}
		screen := runWithin(t, env, zsh, "-f", "-c", zshDriver)
		if !c.want.MatchString(screen) {
			t.Errorf("%q: the terminal shows %q, want a match for %s", c.line, screen, c.want)
		}
	}
}

// Each line of the environment file, uncommented as it stands, leaves
// every flag as it was: the values shown are the defaults. No line is
// active, and every variable is there.
func TestGenerateEnvFileHoldsEveryDefault(t *testing.T) { // not parallel: t.Setenv
	text := generated(t, "envfile")
	if active := regexp.MustCompile(`(?m)^[^#\n].*$`).FindAllString(text, -1); len(active) > 0 {
		t.Errorf("lines not commented out: %q", active)
	}
	want, err := parseCLI([]string{"cat"})
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`(?m)^#(WSGATE_\w+)=(.*)$`).FindAllStringSubmatch(text, -1)
	known := knownEnvars()
	if len(lines) != len(known) {
		t.Errorf("%d variables in the file, want all %d", len(lines), len(known))
	}
	for _, m := range lines {
		name, value := m[1], m[2]
		if !known[name] {
			t.Errorf("%s names no flag", name)
		}
		if value == "" {
			continue // no default to write: the help says what it is
		}
		t.Setenv(name, value)
	}
	got, err := parseCLI([]string{"cat"})
	if err != nil {
		t.Fatalf("the file's defaults, uncommented: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the file's defaults, uncommented, give\n%+v\nwant\n%+v", got, want)
	}
}

func TestGenerateRefusesWhatItCannotWrite(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	code := run([]string{"--generate=troff"}, &out, &errOut)
	if code != exitBadUsage || !strings.Contains(errOut.String(), "--generate=troff: want man, bash, zsh, fish or envfile") || out.Len() > 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// An environment file or a config file cannot turn the service into one
// that prints a man page and exits.
func TestGenerateComesFromTheCommandLineOnly(t *testing.T) { // not parallel: t.Setenv
	t.Setenv("WSGATE_GENERATE", "man")
	cli, err := parseCLI([]string{"cat"})
	if err != nil || cli.Generate != "" {
		t.Errorf("WSGATE_GENERATE=man: --generate=%q, err %v; want it ignored", cli.Generate, err)
	}
	config := filepath.Join(t.TempDir(), "wsgate.json")
	if err := os.WriteFile(config, []byte(`{"generate": "man"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseCLI([]string{"--config", config, "cat"}); err == nil || !strings.Contains(err.Error(), "command line only") {
		t.Errorf("config key generate: err %v, want one saying it belongs on the command line only", err)
	}
}
