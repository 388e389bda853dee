package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// Each completion offers wsgate's flags until the command, the values of
// the flags that have a list of them, files and directories where a flag
// takes a path, programs for the command, and leaves the command's own
// arguments to the shell.

// completionHeader opens every completion script.
const completionHeader = "# %s completion for wsgate %s, written by wsgate from its flags: do not edit.\n"

// flagNames is every name flag answers to, as typed: "--port", "-h".
func flagNames(flag *kong.Flag) []string {
	names := []string{"--" + flag.Name}
	for _, alias := range flag.Aliases {
		names = append(names, "--"+alias)
	}
	if flag.Short != 0 {
		names = append(names, "-"+string(flag.Short))
	}
	return names
}

// writeBashCompletion writes a completion for bash. It needs nothing but
// bash; with bash-completion loaded, the command's arguments are completed
// as that command's.
func writeBashCompletion(w io.Writer, app *kong.Application) error {
	var all, valued, free []string
	var cases strings.Builder
	for _, flag := range allShownFlags(app) {
		names := flagNames(flag)
		all = append(all, names...)
		if !takesValue(flag) {
			continue
		}
		valued = append(valued, names...)
		switch kindOf(flag) {
		case freeValue:
			free = append(free, names...)
		case enumValue:
			fmt.Fprintf(&cases, "    %s) mapfile -t COMPREPLY < <(compgen -W %s -- \"$cur\"); return ;;\n",
				strings.Join(names, "|"), shellQuote(strings.Join(flag.EnumSlice(), " ")))
		case fileValue:
			fmt.Fprintf(&cases, "    %s) compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- \"$cur\"); return ;;\n", strings.Join(names, "|"))
		case dirValue:
			fmt.Fprintf(&cases, "    %s) compopt -o filenames; mapfile -t COMPREPLY < <(compgen -d -- \"$cur\"); return ;;\n", strings.Join(names, "|"))
		}
	}
	if len(free) > 0 { // nothing to offer for a port, an address...
		fmt.Fprintf(&cases, "    %s) return ;;\n", strings.Join(free, "|"))
	}
	fmt.Fprintf(w, completionHeader, "bash", version)
	_, err := fmt.Fprintf(w, bashTemplate, strings.Join(valued, "|"), cases.String(), shellQuote(strings.Join(all, " ")))
	return err
}

// bashTemplate is the bash completion; its verbs fill in the flags that
// take a value, the completion of each one's value (or of none), and every
// flag. bash splits "--flag=value" into "--flag", "=" and "value".
const bashTemplate = `_wsgate() {
  local cur=${COMP_WORDS[COMP_CWORD]} flag="" i=1 word
  COMPREPLY=()
  # Find the command: the first word that is no flag and no flag's value.
  while ((i < COMP_CWORD)); do
    word=${COMP_WORDS[i]}
    case $word in
    --) ((i++)); break ;;
    %[1]s)
      if [[ ${COMP_WORDS[i+1]} == = ]]; then ((i += 3)); else ((i += 2)); fi
      continue ;;
    -*) ((i++)); [[ ${COMP_WORDS[i]} == = ]] && ((i += 2)); continue ;;
    esac
    break
  done
  if ((i < COMP_CWORD)); then
    # The command's own arguments.
    if declare -F _command_offset >/dev/null; then
      _command_offset "$i"
    else
      compopt -o default
    fi
    return
  fi
  if [[ $cur == = ]]; then
    flag=${COMP_WORDS[COMP_CWORD-1]} cur=""
  elif [[ ${COMP_WORDS[COMP_CWORD-1]} == = ]]; then
    flag=${COMP_WORDS[COMP_CWORD-2]}
  elif ((COMP_CWORD > 1)); then
    flag=${COMP_WORDS[COMP_CWORD-1]}
  fi
  case $flag in
%[2]s  esac
  if ((i == COMP_CWORD)) && [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W %[3]s -- "$cur")
  elif ((i == COMP_CWORD)); then
    compopt -o filenames
    mapfile -t COMPREPLY < <(compgen -c -- "$cur"; compgen -f -- "$cur")
  fi
}
complete -F _wsgate wsgate
`

// writeZshCompletion writes a completion for zsh, an _arguments spec per
// flag.
func writeZshCompletion(w io.Writer, app *kong.Application) error {
	fmt.Fprintf(w, "#compdef wsgate\n"+completionHeader, "zsh", version)
	var specs []string
	for _, flag := range allShownFlags(app) {
		for _, name := range flagNames(flag) {
			specs = append(specs, zshSpec(flag, name))
		}
	}
	specs = append(specs,
		shellQuote("1:command:_command_names -e"),
		shellQuote("*::arguments:_normal"))
	_, err := fmt.Fprintf(w, "_arguments -S \\\n  %s\n", strings.Join(specs, " \\\n  "))
	return err
}

// zshSpec is flag's _arguments spec under name.
func zshSpec(flag *kong.Flag, name string) string {
	spec := name
	switch {
	case flag.Name == "help" || flag.Name == "version" || flag.Name == "license":
		spec = "(- *)" + spec // prints and exits: nothing else goes with it
	case flag.IsSlice():
		spec = "*" + spec
	}
	description := strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(summary(flag.Help))
	if !takesValue(flag) {
		return shellQuote(spec + "[" + description + "]")
	}
	if strings.HasPrefix(name, "--") {
		spec += "="
	}
	message := strings.ReplaceAll(flag.FormatPlaceHolder(), ":", `\:`)
	action := " "
	switch kindOf(flag) {
	case enumValue:
		action = "(" + strings.Join(flag.EnumSlice(), " ") + ")"
	case fileValue:
		action = "_files"
	case dirValue:
		action = "_files -/"
	}
	return shellQuote(spec + "[" + description + "]:" + message + ":" + action)
}

// writeFishCompletion writes a completion for fish.
func writeFishCompletion(w io.Writer, app *kong.Application) error {
	fmt.Fprintf(w, completionHeader, "fish", version)
	var valued []string
	var lines strings.Builder
	for _, flag := range allShownFlags(app) {
		fmt.Fprintf(&lines, "complete -c wsgate -n __wsgate_before_command -l %s", flag.Name)
		for _, alias := range flag.Aliases {
			fmt.Fprintf(&lines, " -l %s", alias)
		}
		if flag.Short != 0 {
			fmt.Fprintf(&lines, " -s %c", flag.Short)
		}
		if takesValue(flag) {
			valued = append(valued, flagNames(flag)...)
		}
		switch kindOf(flag) {
		case freeValue:
			lines.WriteString(" -x")
		case enumValue:
			lines.WriteString(" -x -a " + fishQuote(strings.Join(flag.EnumSlice(), " ")))
		case fileValue:
			lines.WriteString(" -r -F")
		case dirValue:
			lines.WriteString(" -x -a '(__fish_complete_directories (commandline -ct))'")
		}
		fmt.Fprintf(&lines, " -d %s\n", fishQuote(summary(flag.Help)))
	}
	for i, name := range valued {
		valued[i] = fishQuote(name)
	}
	_, err := fmt.Fprintf(w, fishTemplate, strings.Join(valued, " "), lines.String())
	return err
}

// fishTemplate is the fish completion; its verbs fill in the flags that take
// a value as the next word, and a complete line per flag.
const fishTemplate = `# True until the command: while no word yet is neither a flag nor a flag's
# value.
function __wsgate_before_command
    set -l words (commandline -opc)
    set -e words[1]
    set -l value_next 0
    for word in $words
        if test $value_next = 1
            set value_next 0
            continue
        end
        switch $word
            case --
                return 1
            case %[1]s
                set value_next 1
            case '-*'
            case '*'
                return 1
        end
    end
end
%[2]scomplete -c wsgate -n __wsgate_before_command -a '(__fish_complete_command)' -d command
complete -c wsgate -n 'not __wsgate_before_command' -F
`

// shellQuote quotes s for bash and zsh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fishQuote quotes s for fish, where a backslash inside single quotes
// escapes a quote or a backslash.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}
