package main

// --generate: the man page, the shell completions and the environment file
// of the Debian package, written from the kong model that --help prints, so
// that none of them can drift from it.

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// generators are what --generate can write, by name.
var generators = map[string]func(io.Writer, *kong.Application) error{
	"man":     writeManPage,
	"bash":    writeBashCompletion,
	"zsh":     writeZshCompletion,
	"fish":    writeFishCompletion,
	"envfile": writeEnvFile,
}

// generatorNames lists generators' names for the usage error, in a fixed
// order.
const generatorNames = "man, bash, zsh, fish or envfile"

// generate writes what --generate=what names to stdout and returns the exit
// code.
func generate(what string, stdout, stderr io.Writer) int {
	write, ok := generators[what]
	if !ok {
		fmt.Fprintf(stderr, "wsgate: --generate=%s: want %s\n", what, generatorNames)
		return exitBadUsage
	}
	app, err := cliModel()
	if err == nil {
		err = write(stdout, app)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: --generate=%s: %v\n", what, err)
		return exitFailure
	}
	return exitOK
}

// cliModel is wsgate's command line as kong sees it.
func cliModel() (*kong.Application, error) {
	parser, err := kong.New(&CLI{}, cliOptions()...)
	if err != nil {
		return nil, err
	}
	return parser.Model, nil
}

// flagGroup is a heading of --help and the flags under it.
type flagGroup struct {
	title string // "" for the flags --help lists before any group
	flags []*kong.Flag
}

// shownFlags returns the flags --help shows, grouped in its order: those of
// no group first, then each group as it first appears. Hidden flags are left
// out.
func shownFlags(app *kong.Application) []flagGroup {
	groups := []flagGroup{{}}
	index := map[string]int{"": 0}
	for _, flag := range app.Flags {
		if flag.Hidden {
			continue
		}
		title := ""
		if flag.Group != nil {
			title = flag.Group.Title
		}
		i, ok := index[title]
		if !ok {
			i = len(groups)
			index[title] = i
			groups = append(groups, flagGroup{title: title})
		}
		groups[i].flags = append(groups[i].flags, flag)
	}
	return groups
}

// allShownFlags is every flag of shownFlags, in its order.
func allShownFlags(app *kong.Application) []*kong.Flag {
	var flags []*kong.Flag
	for _, group := range shownFlags(app) {
		flags = append(flags, group.flags...)
	}
	return flags
}

// valueKind says what a flag's value is, for completion.
type valueKind int

const (
	noValue   valueKind = iota // a switch: --ssl
	freeValue                  // anything: --port=N
	enumValue                  // one of a list: --logformat=json
	fileValue                  // a file: --sslcert=FILE
	dirValue                   // a directory: --dir=DIR
)

// kindOf is the kind of flag's value. Paths are told apart by their
// placeholder, which is what --help tells the user too.
func kindOf(flag *kong.Flag) valueKind {
	switch {
	case flag.IsBool() || flag.IsCounter():
		return noValue
	case flag.Enum != "":
		return enumValue
	case flag.PlaceHolder == "DIR":
		return dirValue
	case flag.Tag.Type == "path" || flag.PlaceHolder == "FILE":
		return fileValue
	}
	return freeValue
}

// takesValue reports whether flag is followed by a value.
func takesValue(flag *kong.Flag) bool { return kindOf(flag) != noValue }

// summary is the first sentence of a flag's help, for the one-line
// descriptions shells show beside it.
func summary(help string) string {
	if i := strings.Index(help, ". "); i >= 0 {
		return help[:i]
	}
	return strings.TrimSuffix(help, ".")
}

// commandHelp is the help of the positional COMMAND, which --help prints
// under "Arguments".
func commandHelp(app *kong.Application) string {
	for _, arg := range app.Positional {
		return arg.Help
	}
	return ""
}
