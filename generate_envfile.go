package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/alecthomas/kong"
)

// envFileWidth is where the environment file's comments wrap.
const envFileWidth = 78

// envFileHeader opens the environment file; its verb is the version.
const envFileHeader = `# Settings for wsgate.service, read through its EnvironmentFile= line:
# WSGATE_<FLAG>=value, one a line, means --<flag>=value. Below is every flag
# with its help and its default, commented out: uncomment a line to change
# it. The service runs /usr/bin/wsgate with no flags of its own: set
# WSGATE_DIR to a directory of programs, or give a command in an ExecStart=
# line with "systemctl edit wsgate". Then "systemctl enable --now
# wsgate.socket". A value with spaces goes in double quotes.
#
# Written by wsgate %s from its flags.
`

// writeEnvFile writes the environment file of wsgate.service: every flag
// that has a variable, under its group, with its help, commented out with
// its default.
func writeEnvFile(w io.Writer, app *kong.Application) error {
	var b strings.Builder
	fmt.Fprintf(&b, envFileHeader, version)
	for _, group := range shownFlags(app) {
		heading := false
		for _, flag := range group.flags {
			if len(flag.Envs) == 0 {
				continue
			}
			if !heading && group.title != "" {
				fmt.Fprintf(&b, "\n## %s\n", group.title)
			}
			heading = true
			b.WriteString("\n" + wrapComment(flag.Help+listNote(flag), envFileWidth))
			for _, env := range flag.Envs {
				fmt.Fprintf(&b, "#%s=%s\n", env, envFileValue(envDefault(flag)))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// listNote says how a variable holds several values, for a flag that takes
// several.
func listNote(flag *kong.Flag) string {
	switch {
	case !flag.IsSlice():
		return ""
	case flag.Tag.Sep == -1:
		return " Here one value only; more on the command line."
	}
	return fmt.Sprintf(" Several values separated by \"%c\".", flag.Tag.Sep)
}

// envDefault is the value flag has when it is not set, as its variable
// would hold it; "" where there is none to write (a port that depends on
// --ssl, an empty list).
func envDefault(flag *kong.Flag) string {
	if flag.HasDefault {
		return flag.Default
	}
	switch flag.Target.Kind() {
	case reflect.Bool:
		return "false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "0"
	}
	return ""
}

// envFileValue writes value as systemd's EnvironmentFile= reads it:
// double-quoted, with backslash escapes, when it holds a space, a quote or
// a backslash.
func envFileValue(value string) string {
	if !strings.ContainsAny(value, " \t\"'\\$#") {
		return value
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value) + `"`
}

// wrapComment wraps text into "# " lines of at most width columns (a longer
// word gets a line of its own).
func wrapComment(text string, width int) string {
	var b strings.Builder
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > width && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	return b.String() + line + "\n"
}
