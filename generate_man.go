package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// writeManPage writes wsgate(1) in man(7) roff: the options section is
// --help's groups, flags, placeholders, help and variables.
func writeManPage(w io.Writer, app *kong.Application) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH WSGATE 1 \"\" \"wsgate %s\" \"User Commands\"\n", roff(version))
	b.WriteString(".nh\n.ad l\n") // no hyphens in flag names, no stretched spaces
	b.WriteString(".SH NAME\nwsgate \\- " + roff(lowerFirst(strings.TrimSuffix(app.Help, "."))) + "\n")
	b.WriteString(manSynopsis)
	b.WriteString(".SH DESCRIPTION\n" + roffText(app.Help) + "\n.PP\n")
	b.WriteString(roffText("COMMAND: "+commandHelp(app)) + "\n")
	b.WriteString(manCommandLine)
	b.WriteString(".SH OPTIONS\n")
	for _, group := range shownFlags(app) {
		if group.title != "" {
			b.WriteString(".SS " + roff(group.title) + "\n")
		}
		for _, flag := range group.flags {
			writeManFlag(&b, flag)
		}
	}
	b.WriteString(manTrailer)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeManFlag writes one flag as a tagged paragraph: the flag as --help
// shows it, its help, and its variable.
func writeManFlag(b *strings.Builder, flag *kong.Flag) {
	b.WriteString(".TP\n")
	if flag.Short != 0 {
		fmt.Fprintf(b, "\\fB\\-%s\\fR, ", roff(string(flag.Short)))
	}
	fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", roff(flag.Name))
	if takesValue(flag) {
		fmt.Fprintf(b, "=\\fI%s\\fR", roff(flag.FormatPlaceHolder()))
	}
	b.WriteString("\n" + roffText(flag.Help) + "\n")
	for _, env := range flag.Envs {
		fmt.Fprintf(b, "Variable: \\fB%s\\fR.\n", roff(env))
	}
}

// manSynopsis is the usage --help prints first.
const manSynopsis = `.SH SYNOPSIS
.B wsgate
[\fIflags\fR] \fICOMMAND\fR [\fIARGS\fR ...]
.br
.B wsgate
[\fIflags\fR] \fB\-\-dir\fR=\fIDIR\fR
`

// manCommandLine is what the synopsis cannot say.
const manCommandLine = `.PP
Everything after COMMAND belongs to it:
\fBwsgate \-\-port=8080 tail \-n 5 \-f x.log\fR
passes \fB\-n 5 \-f x.log\fR to tail. A leading \fB\-\-\fR is accepted and
dropped. COMMAND is looked up on PATH at start.
`

// manTrailer is the sections after the options.
const manTrailer = `.SH ENVIRONMENT
Every flag above with a variable can be set as \fBWSGATE_\fR\fIFLAG\fR, for
systemd's \fBEnvironmentFile=\fR. A flag takes its value from the first of:
the command line, its variable, the \fB\-\-config\fR file, its default. A
\fBWSGATE_\fR variable that names no flag is ignored with a warning.
.SH FILES
.TP
.I /etc/default/wsgate
Settings for \fBwsgate.service\fR: every variable, commented out, with its
default.
.TP
.I /usr/lib/systemd/system/wsgate.service
.TQ
.I /usr/lib/systemd/system/wsgate.socket
.TQ
.I /usr/lib/systemd/system/wsgate\-metrics.socket
The service and the sockets systemd opens for it (socket activation).
.TP
.I /usr/share/doc/wsgate/examples/
Example programs, units and reverse proxy configurations.
.SH SIGNALS
SIGTERM and SIGINT shut down gracefully: every client gets close 1001 and
every program its stop sequence; a second signal forces it. SIGHUP reloads
the TLS certificate and key without dropping a connection.
.SH EXIT STATUS
.TP
.B 0
Stopped cleanly, or printed what was asked.
.TP
.B 1
Could not listen, failed while serving, or was forced to stop.
.TP
.B 2
The command line, a variable or the config file is wrong.
.SH SEE ALSO
.BR websocketd (1),
.BR systemd.socket (5),
.BR systemd.exec (5)
`

// roff escapes s for use inside a roff line: backslashes print as such and
// dashes as the ASCII ones a reader copies into a shell.
func roff(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// roffText escapes s as text lines of their own: a line that would start
// with a control character is guarded.
func roffText(s string) string {
	lines := strings.Split(roff(s), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			lines[i] = `\&` + line
		}
	}
	return strings.Join(lines, "\n")
}

// lowerFirst lowers the first letter of s, for the NAME line.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
