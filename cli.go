package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/httppolicy"
	"github.com/wsgate/wsgate/internal/httpserver"
	"github.com/wsgate/wsgate/internal/logs"
	"github.com/wsgate/wsgate/metrics"
	"github.com/wsgate/wsgate/process"
)

// CLI is wsgate's command line. Flags keep websocketd's names and meanings;
// each can also come from WSGATE_<NAME> or from the --config file.
type CLI struct {
	Port       *int     `help:"TCP port to listen on (0 picks a free one, named by the 'listening' log line at info level). Default 80, or 443 with --ssl." placeholder:"N" group:"Listening"`
	Address    []string `help:"Address to listen on; repeat for several. IPv6 as [::1]. Default: all interfaces." placeholder:"ADDR" group:"Listening"`
	UnixSocket string   `name:"unixsocket" help:"Unix socket to listen on; alone, instead of TCP, with --port or --address, as well." placeholder:"PATH" type:"path" group:"Listening"`
	RedirPort  int      `name:"redirport" help:"Plain-HTTP port that redirects every request to --port." placeholder:"N" group:"Listening"`
	SSL        bool     `name:"ssl" help:"Speak TLS (1.2 or later) on every listener; needs --sslcert and --sslkey." group:"TLS"`
	SSLCert    string   `name:"sslcert" help:"Certificate chain, PEM." placeholder:"FILE" type:"path" group:"TLS"`
	SSLKey     string   `name:"sslkey" help:"Private key of --sslcert, PEM." placeholder:"FILE" type:"path" group:"TLS"`
	SSLCA      string   `name:"sslca" help:"CA certificates, PEM: clients must present a certificate one of them signed." placeholder:"FILE" type:"path" group:"TLS"`

	Dir        string   `help:"Serve every executable under DIR: the URL path names the script, the rest of it becomes PATH_INFO." placeholder:"DIR" type:"path" group:"Routing"`
	StaticDir  string   `name:"staticdir" help:"Serve the files under DIR for plain HTTP requests." placeholder:"DIR" type:"path" group:"Routing"`
	CGIDir     string   `name:"cgidir" help:"Serve the scripts under DIR as CGI for plain HTTP requests." placeholder:"DIR" type:"path" group:"Routing"`
	DevConsole bool     `name:"devconsole" help:"Serve the developer console, a page to try an endpoint by hand, for plain HTTP requests." group:"Routing"`
	Header     []string `help:"Header added to every response, as \"Name: value\"; repeatable." placeholder:"\"K: V\"" sep:"none" group:"Routing"`
	HeaderWS   []string `name:"header-ws" help:"Header added to WebSocket handshake responses; repeatable." placeholder:"\"K: V\"" sep:"none" group:"Routing"`
	HeaderHTTP []string `name:"header-http" help:"Header added to plain HTTP responses; repeatable." placeholder:"\"K: V\"" sep:"none" group:"Routing"`

	SameOrigin   bool     `name:"sameorigin" help:"Refuse browser handshakes from other origins. Always on: kept for websocketd command lines." group:"Origin"`
	Origin       []string `help:"Origins allowed besides the gateway's own: host, host:port or scheme://host[:port]; '*' allows any." placeholder:"LIST" group:"Origin"`
	TrustedProxy []string `name:"trustedproxy" help:"Reverse proxy whose X-Forwarded-For, Forwarded, X-Forwarded-Proto and X-Forwarded-Host are believed: an address or a CIDR such as 10.0.0.0/8; repeatable." placeholder:"CIDR" group:"Origin"`

	MaxForks     int   `name:"maxforks" help:"Most concurrent child processes; 0 means unlimited. Over it, connections close with 1013." default:"1024" group:"Limits"`
	MaxFrameSize int64 `name:"maxframesize" help:"Largest message accepted from a client, in bytes; larger ones close with 1009." default:"1048576" group:"Limits"`
	MaxLineSize  int   `name:"maxlinesize" help:"Longest output line sent, in bytes; a longer one closes the connection with 1009." default:"16777216" group:"Limits"`
	CloseMS      int   `name:"closems" help:"Milliseconds added to each step of the stop sequence (stdin close, SIGINT, SIGTERM, SIGKILL)." default:"0" group:"Limits"`
	PingMS       int   `name:"pingms" help:"Ping interval in milliseconds; a client silent for two intervals is dropped. 0 turns pings off." default:"30000" group:"Limits"`
	WriteTimeout int   `name:"writetimeout" help:"Seconds a client may accept no data before it is dropped." default:"60" group:"Limits"`
	MaxConns     int   `name:"maxconns" help:"Most concurrent WebSocket connections; 0 means unlimited. Over it, connections close with 1013." default:"0" group:"Limits"`

	BasicAuth   string        `name:"basicauth" help:"htpasswd file of bcrypt entries (htpasswd -B): handshakes and plain HTTP need a user and password from it (401 otherwise). Re-read on SIGHUP." placeholder:"FILE" type:"path" group:"Who may connect"`
	JWTKey      string        `name:"jwtkey" help:"Accept JSON Web Tokens signed with this key: an HMAC secret, a PEM public key or a JWKS document. The token comes from Authorization: Bearer, the --jwtcookie cookie or the access_token parameter." placeholder:"FILE" type:"path" group:"Who may connect"`
	JWTAudience string        `name:"jwtaudience" help:"With --jwtkey: a token's aud must name this." placeholder:"AUD" group:"Who may connect"`
	JWTIssuer   string        `name:"jwtissuer" help:"With --jwtkey: a token's iss must be this." placeholder:"ISS" group:"Who may connect"`
	JWTCookie   string        `name:"jwtcookie" help:"With --jwtkey: the cookie a token may come in." placeholder:"NAME" group:"Who may connect"`
	UserHeader  string        `name:"userheader" help:"Header in which a --trustedproxy names the user it authenticated (nginx auth_request, oauth2-proxy's X-Auth-Request-User); believed from a trusted proxy only." placeholder:"NAME" group:"Who may connect"`
	AuthCmd     string        `name:"authcmd" help:"Program run before each request is let in, with its CGI environment and HTTP_AUTHORIZATION: exit 0 admits (its REMOTE_USER=... and AUTH_<NAME>=... lines reach the program), 1 gets 401, others 403." placeholder:"PROGRAM" group:"Who may connect"`
	AuthTimeout time.Duration `name:"authtimeout" help:"How long --authcmd may take; past it the request gets 503. Default: ${default}." default:"5s" placeholder:"DURATION" group:"Who may connect"`

	MaxConnsPerIP int           `name:"maxconnsperip" help:"Most concurrent WebSocket connections from one client address (IPv6: per /64; behind a trusted proxy, the address it names); 0 means unlimited. Over it, connections close with 1013." default:"0" placeholder:"N" group:"Fairness"`
	RateLimit     float64       `name:"ratelimit" help:"Handshakes per second one client address may make, in bursts of as many; over it, 429 with Retry-After. 0 means unlimited." default:"0" placeholder:"N" group:"Fairness"`
	MaxLifetime   time.Duration `name:"maxlifetime" help:"Close a session this old with 1001 (session lifetime reached), e.g. 8h; 0 for no bound." default:"0" placeholder:"DURATION" group:"Fairness"`
	IdleTimeout   time.Duration `name:"idletimeout" help:"Close a session with 1001 (idle) when no message went either way for this long, e.g. 10m (pings do not count); 0 for no bound." default:"0" placeholder:"DURATION" group:"Fairness"`

	Broadcast bool   `help:"Broadcast mode: one shared process per endpoint and query string, started by its first client; every line it prints goes to every client. A client that adds ?last_event_id= (empty, or the EPOCH:SEQ of the last line it has) gets each line as \"id: EPOCH:SEQ\" and a blank line before it, and resumes after that line with no gap or duplicate (text mode)." group:"Broadcast"`
	Replay    int    `help:"Broadcast mode: lines a client that joins gets first, the last ones the process printed; 0 for none." default:"0" group:"Broadcast"`
	Queue     int    `help:"Broadcast mode: most messages queued for one client; a client whose queue is full is closed with 1013." default:"1024" group:"Broadcast"`
	LingerMS  int    `name:"lingerms" help:"Broadcast mode: milliseconds a shared process outlives its last client." default:"0" group:"Broadcast"`
	Bus       string `help:"Broadcast mode: share each stream with every instance naming the same Redis, one process among all of them: redis://[:PASSWORD@]HOST[:PORT][/DB], rediss:// for TLS, or for Redis Sentinel the sentinels and the master, redis+sentinel://[:PASSWORD@]HOST,.../MASTER[/DB]. Ready (/healthz, sd_notify) only while Redis answers." placeholder:"URL" group:"Broadcast"`

	Binary        bool     `help:"Binary mode: raw bytes both ways instead of lines." group:"Child process"`
	LineBuffer    bool     `name:"linebuffer" help:"Make the program's stdout a pseudo-terminal, so that programs that buffer output to a pipe (C stdio, Python, grep, sed) send each line as they print it. stdin and stderr stay pipes." group:"Child process"`
	PassEnv       []string `name:"passenv" help:"Variables of wsgate's environment passed to the child. Default: ${default}." default:"PATH,LD_LIBRARY_PATH" placeholder:"A,B" group:"Child process"`
	PassStderr    bool     `name:"passstderr" help:"Send stderr to the client too; every message is then JSON {\"stream\":\"stdout\"|\"stderr\",\"data\":\"...\"}." group:"Child process"`
	ReverseLookup bool     `name:"reverselookup" help:"Look up the client's DNS name for REMOTE_HOST." group:"Child process"`

	Subprotocol []string `name:"subprotocol" help:"Subprotocols served: a client gets the first one it offers that is listed, named to the program in WEBSOCKET_PROTOCOL; a client that offers only others gets 400." placeholder:"LIST" group:"WebSocket"`
	Compress    bool     `help:"Compress messages with permessage-deflate for clients that offer it (browsers do)." group:"WebSocket"`

	LogLevel  string `name:"loglevel" help:"Least level logged: debug, trace, access, info, warn, error or fatal." default:"access" enum:"${loglevels}" group:"Logging"`
	LogFormat string `name:"logformat" help:"Log format: text or json." default:"text" enum:"text,json" group:"Logging"`

	Metrics string `help:"Serve Prometheus metrics at /metrics and health at /healthz on this separate address, such as 127.0.0.1:9090." placeholder:"ADDR" group:"Operations"`

	Config  kong.ConfigFlag  `help:"JSON file of flag values, keyed by flag name; the command line and WSGATE_* variables win." placeholder:"FILE" group:"Other"`
	Version kong.VersionFlag `help:"Print the version, commit and Go version, and exit." env:"-" group:"Other"`
	License bool             `help:"Print the license and exit." env:"-" group:"Other"`

	Generate string `help:"Print the man page, a shell completion or the environment file: man, bash, zsh, fish or envfile." hidden:"" env:"-" placeholder:"WHAT"`

	Command []string `arg:"" optional:"" passthrough:"partial" help:"Program to run for each connection, with its arguments."`
}

// envPrefix starts the name of every flag's environment variable.
const envPrefix = "WSGATE_"

// cliOptions are kong's options for wsgate's command line.
func cliOptions() []kong.Option {
	return []kong.Option{
		kong.Name("wsgate"),
		kong.Description("Turns a program that reads stdin and writes stdout into a WebSocket service."),
		kong.Vars{"version": versionLine(), "loglevels": strings.Join(logs.LevelNames(), ",")},
		kong.DefaultEnvars(strings.TrimSuffix(envPrefix, "_")),
		kong.Configuration(strictJSON),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
		kong.Help(printHelp),
	}
}

// parseCLI parses args (without the program name) into a CLI. A flag's
// value comes from the command line, else from its WSGATE_ variable, else
// from the --config file, else from its default.
func parseCLI(args []string, options ...kong.Option) (*CLI, error) {
	var cli CLI
	parser, err := kong.New(&cli, append(cliOptions(), options...)...)
	if err != nil {
		return nil, err
	}
	if _, err := parser.Parse(websocketdArgs(args)); err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) && pathErr.Op == "open" { // the only file kong opens: --config's
			return nil, fmt.Errorf("--config=%s: %v", pathErr.Path, pathErr.Err)
		}
		return nil, err
	}
	if len(cli.Command) > 0 && cli.Command[0] == "--" {
		cli.Command = cli.Command[1:]
	}
	return &cli, nil
}

// validate checks what kong cannot: the command and the ranges of values.
func (c *CLI) validate() error {
	if err := c.validateTLS(); err != nil {
		return err
	}
	switch {
	case len(c.Command) == 0 && c.Dir == "":
		return errors.New("no command given: usage is wsgate [flags] COMMAND [ARGS...] or wsgate [flags] --dir=DIR, e.g. wsgate --port=8080 ./script.sh")
	case len(c.Command) > 0 && c.Dir != "":
		return fmt.Errorf("both --dir and a command (%s) given: use one or the other", c.Command[0])
	case c.LineBuffer && !process.TerminalStdoutOffered:
		return errors.New("--linebuffer is Linux-only (it gives the program a pseudo-terminal as its stdout): leave it out, and have the program flush its lines itself (stdbuf -oL, python3 -u)")
	case c.RedirPort < 0 || c.RedirPort > 65535:
		return fmt.Errorf("--redirport=%d is out of range: use 1 to 65535", c.RedirPort)
	case c.Port != nil && (*c.Port < 0 || *c.Port > 65535):
		return fmt.Errorf("--port=%d is out of range: use 0 to 65535", *c.Port)
	case c.MaxForks < 0:
		return fmt.Errorf("--maxforks=%d is negative: use 0 for unlimited", c.MaxForks)
	case c.MaxFrameSize <= 0:
		return fmt.Errorf("--maxframesize=%d must be positive", c.MaxFrameSize)
	case c.MaxLineSize <= 0:
		return fmt.Errorf("--maxlinesize=%d must be positive", c.MaxLineSize)
	case c.CloseMS < 0:
		return fmt.Errorf("--closems=%d is negative: use 0 or more", c.CloseMS)
	case c.PingMS < 0:
		return fmt.Errorf("--pingms=%d is negative: use 0 to turn pings off", c.PingMS)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("--writetimeout=%d must be positive", c.WriteTimeout)
	case c.MaxConns < 0:
		return fmt.Errorf("--maxconns=%d is negative: use 0 for unlimited", c.MaxConns)
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.validateBroadcast(); err != nil {
		return err
	}
	return c.validatePorts()
}

// validateBroadcast checks the broadcast flags.
func (c *CLI) validateBroadcast() error {
	switch {
	case c.Queue <= 0:
		return fmt.Errorf("--queue=%d must be positive", c.Queue)
	case c.Replay < 0:
		return fmt.Errorf("--replay=%d is negative: use 0 for none", c.Replay)
	case c.LingerMS < 0:
		return fmt.Errorf("--lingerms=%d is negative: use 0 to stop at once", c.LingerMS)
	case !c.Broadcast && (c.Replay > 0 || c.LingerMS > 0 || c.Bus != ""):
		return errors.New("--replay, --lingerms and --bus need --broadcast")
	}
	return c.validateMetrics()
}

// validateMetrics checks that --metrics is a TCP address with a port.
func (c *CLI) validateMetrics() error {
	if c.Metrics == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.Metrics)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
		example := "127.0.0.1:9090"
		if _, nerr := strconv.ParseUint(c.Metrics, 10, 16); nerr == nil { // a port alone
			example = "127.0.0.1:" + c.Metrics
		}
		return fmt.Errorf("--metrics=%s: want HOST:PORT, such as --metrics=%s", c.Metrics, example)
	}
	return nil
}

func (c *CLI) validateTLS() error {
	switch {
	case c.SSL && (c.SSLCert == "" || c.SSLKey == ""):
		return errors.New("--ssl needs --sslcert=FILE and --sslkey=FILE")
	case !c.SSL && (c.SSLCert != "" || c.SSLKey != "" || c.SSLCA != ""):
		return errors.New("--sslcert, --sslkey and --sslca need --ssl")
	}
	return nil
}

// resolveCommand finds the command on PATH, as a shell would.
func (c *CLI) resolveCommand() error {
	if len(c.Command) == 0 {
		return nil // --dir
	}
	path, err := exec.LookPath(c.Command[0])
	if err != nil {
		return commandError(c.Command[0], err)
	}
	c.Command[0] = path
	return nil
}

// logger returns the logger --loglevel and --logformat ask for, writing to w.
// Text written to the journal carries no time: journald adds its own.
func (c *CLI) logger(w io.Writer) (*slog.Logger, error) {
	level, err := logs.ParseLevel(c.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--loglevel: %w", err)
	}
	var opts []logs.Option
	if c.LogFormat == "text" && writesToJournal(w) {
		opts = append(opts, logs.WithoutTime())
	}
	logger, err := logs.New(w, c.LogFormat, level, opts...)
	if err != nil {
		return nil, fmt.Errorf("--logformat: %w", err)
	}
	return logger, nil
}

// gatewayConfig turns the flags into the gateway's configuration.
func (c *CLI) gatewayConfig() (gateway.Config, error) {
	var headers [3]http.Header
	flags := [3]string{"--header", "--header-ws", "--header-http"}
	for i, list := range [][]string{c.Header, c.HeaderWS, c.HeaderHTTP} {
		h, err := parseHeaders(list)
		if err != nil {
			return gateway.Config{}, fmt.Errorf("%s: %w", flags[i], err)
		}
		headers[i] = h
	}
	proxies, err := parseTrustedProxies(c.TrustedProxy)
	if err != nil {
		return gateway.Config{}, err
	}
	return gateway.Config{
		Command:         c.Command,
		Dir:             c.Dir,
		StaticDir:       c.StaticDir,
		CGIDir:          c.CGIDir,
		DevConsole:      c.DevConsole,
		Origins:         c.Origin,
		TrustedProxies:  proxies,
		Headers:         headers[0],
		HeadersWS:       headers[1],
		HeadersHTTP:     headers[2],
		ReverseLookup:   c.ReverseLookup,
		PassStderr:      c.PassStderr,
		Binary:          c.Binary,
		LineBuffer:      c.LineBuffer,
		Subprotocols:    c.Subprotocol,
		Compress:        c.Compress,
		MaxForks:        c.MaxForks,
		MaxMessageSize:  c.MaxFrameSize,
		MaxLineSize:     c.MaxLineSize,
		CloseGrace:      time.Duration(c.CloseMS) * time.Millisecond,
		PingInterval:    time.Duration(c.PingMS) * time.Millisecond,
		WriteTimeout:    time.Duration(c.WriteTimeout) * time.Second,
		MaxConns:        c.MaxConns,
		MaxConnsPerAddr: c.MaxConnsPerIP,
		RateLimit:       c.RateLimit,
		MaxLifetime:     c.MaxLifetime,
		IdleTimeout:     c.IdleTimeout,
		Broadcast:       c.Broadcast,
		Replay:          c.Replay,
		QueueSize:       c.Queue,
		Linger:          time.Duration(c.LingerMS) * time.Millisecond,
		PassEnv:         passedEnv(c.PassEnv),
		ServerSoftware:  "wsgate/" + version,
	}, nil
}

// configFlags names the flag behind each gateway.Config field that a
// gateway.ConfigError can name.
var configFlags = map[string]string{
	"Dir": "--dir", "CGIDir": "--cgidir", "StaticDir": "--staticdir", "Subprotocols": "--subprotocol", "Origins": "--origin",
}

// inFlagTerms restates an error from gateway.New about a Config field as one
// about the flag that set it.
func inFlagTerms(err error) error {
	var ce *gateway.ConfigError
	if errors.As(err, &ce) && configFlags[ce.Field] != "" {
		return fmt.Errorf("%s: %w", configFlags[ce.Field], ce.Err)
	}
	return err
}

// parseHeaders parses "Name: value" flags.
func parseHeaders(list []string) (http.Header, error) {
	h := http.Header{}
	for _, entry := range list {
		name, value, ok := strings.Cut(entry, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf("header %q: want \"Name: value\"", entry)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

// parseTrustedProxies parses --trustedproxy: addresses or CIDRs.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, entry := range list {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(entry)
		if err != nil {
			addr, aerr := netip.ParseAddr(strings.Trim(entry, "[]"))
			if aerr != nil {
				return nil, fmt.Errorf("--trustedproxy=%s: want an address or a CIDR, such as 10.0.0.0/8 or ::1", entry)
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		prefixes = append(prefixes, prefix.Masked())
	}
	return prefixes, nil
}

// passedEnv returns "NAME=value" for each named variable that is set.
func passedEnv(names []string) []string {
	var env []string
	for _, name := range names {
		name = strings.TrimSpace(name)
		if value, ok := os.LookupEnv(name); ok && name != "" {
			env = append(env, name+"="+value)
		}
	}
	return env
}

// mainPort is --port, or else 80, or 443 with --ssl.
func (c *CLI) mainPort() int {
	switch {
	case c.Port != nil:
		return *c.Port
	case c.SSL:
		return 443
	}
	return 80
}

// listeners says where to listen: each --address (all interfaces when none)
// on the main port, and the Unix socket. A Unix socket alone replaces TCP.
// Sockets passed by systemd replace both. TLS is the caller's to add.
func (c *CLI) listeners(inherited []net.Listener) httpserver.Listeners {
	ls := httpserver.Listeners{Inherited: inherited, RedirectPort: c.mainPort(), Console: c.DevConsole}
	switch {
	case len(inherited) > 0:
	case c.listensOnTCP():
		ls.Addrs = c.tcpAddrs(c.mainPort())
		ls.UnixSocket = c.UnixSocket
	default:
		ls.UnixSocket = c.UnixSocket
	}
	if c.RedirPort != 0 {
		ls.RedirectAddrs = c.tcpAddrs(c.RedirPort)
	}
	return ls
}

// loopbackOnly reports whether every main listener of ls is on loopback,
// so that the gateway refuses a Host that DNS rebinding could send. A Unix
// socket is not: a reverse proxy reaches it with the public name as Host.
func loopbackOnly(ls httpserver.Listeners) bool {
	addrs := ls.Addrs
	for _, l := range ls.Inherited { // systemd's sockets instead of ours
		if l.Addr().Network() != "tcp" {
			return false
		}
		addrs = append(addrs, l.Addr().String())
	}
	if ls.UnixSocket != "" || len(addrs) == 0 {
		return false
	}
	for _, addr := range addrs {
		if !httppolicy.LoopbackAddr(addr) {
			return false
		}
	}
	return true
}

// tcpAddrs joins each --address with port; no address means all interfaces.
func (c *CLI) tcpAddrs(port int) []string {
	if len(c.Address) == 0 {
		return []string{fmt.Sprintf(":%d", port)}
	}
	addrs := make([]string, len(c.Address))
	for i, a := range c.Address {
		host := strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		addrs[i] = joinHostPort(host, port)
	}
	return addrs
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// boolFlags are the flags that take no value, for websocketdArgs.
var boolFlags = map[string]bool{
	"binary": true, "ssl": true, "devconsole": true, "sameorigin": true, "reverselookup": true,
	"passstderr": true, "version": true, "license": true, "help": true, "broadcast": true,
	"linebuffer": true, "compress": true,
}

// websocketdArgs rewrites websocketd's Go-style flags before the command into
// wsgate's: "-port=8080" and "-port 8080" become "--port=8080" and
// "--port 8080", "--binary=true" becomes "--binary" and "--binary=false" is
// dropped. Everything from the command on is left untouched.
func websocketdArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" || !strings.HasPrefix(arg, "-") || arg == "-" {
			return append(out, args[i:]...)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if len(name) < 2 && !strings.HasPrefix(arg, "--") {
			out = append(out, arg) // a short flag such as -h
			continue
		}
		switch {
		case boolFlags[name] && hasValue && (value == "false" || value == "0"):
			continue
		case boolFlags[name] && hasValue && (value == "true" || value == "1"):
			out = append(out, "--"+name)
		default:
			out = append(out, "--"+strings.TrimLeft(arg, "-"))
			if !hasValue && !boolFlags[name] && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		}
	}
	return out
}

// printHelp is kong's help with a usage line that says where the command goes.
func printHelp(options kong.HelpOptions, ctx *kong.Context) error {
	var buf strings.Builder
	stdout := ctx.Stdout
	ctx.Stdout = &buf
	err := kong.DefaultHelpPrinter(options, ctx)
	ctx.Stdout = stdout
	help := buf.String()
	if first, rest, ok := strings.Cut(help, "\n"); ok && strings.HasPrefix(first, "Usage:") {
		help = "Usage: wsgate [flags] COMMAND [ARGS...]\n       wsgate [flags] --dir=DIR\n" + rest
	}
	_, _ = io.WriteString(stdout, help+helpExamples)
	return err
}

// helpExamples ends --help: two command lines to start from. The test of
// --help checks that they parse.
const helpExamples = `
Examples:
  wsgate --address=127.0.0.1 --port=8080 examples/greeter.sh
      Each connection to ws://127.0.0.1:8080/ runs greeter.sh: a message is a
      line of its stdin, a line it prints is a message.
  wsgate --address=127.0.0.1 --port=8080 --devconsole vmstat 1
      Open http://127.0.0.1:8080/ in a browser: the dev console connects and
      charts each column vmstat prints, live.
`

// strictJSON loads a --config file like kong.JSON, but a key that names no
// flag is an error rather than silently ignored, a bad value is an error
// naming its key and the file, and a flag whose WSGATE_ variable is set
// keeps the variable's value.
func strictJSON(r io.Reader) (kong.Resolver, error) {
	label := "--config"
	if f, ok := r.(interface{ Name() string }); ok { // kong hands the opened *os.File
		label = "--config=" + f.Name()
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	var keys map[string]any
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, configJSONError(label, data, err)
	}
	resolver, err := kong.JSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	return configResolver{Resolver: resolver, file: label, keys: keys}, nil
}

type configResolver struct {
	kong.Resolver
	file string // "--config=PATH", for errors
	keys map[string]any
}

// commandLineOnly are the flags a config file cannot set: they make wsgate
// print and exit, or name the file itself.
var commandLineOnly = map[string]bool{"help": true, "version": true, "license": true, "config": true, "generate": true}

// Validate rejects keys that are no flag's name, and those of flags that
// belong on the command line only.
func (c configResolver) Validate(app *kong.Application) error {
	known := map[string]bool{}
	for _, flag := range app.Flags {
		known[flag.Name] = true
		known[strings.ReplaceAll(flag.Name, "-", "_")] = true
	}
	for key := range c.keys {
		switch {
		case commandLineOnly[key]:
			return fmt.Errorf("%s: key %q: --%s belongs on the command line only", c.file, key, key)
		case !known[key] && nearestName(key, known) != "":
			return fmt.Errorf("%s: unknown key %q: did you mean %q?", c.file, key, nearestName(key, known))
		case !known[key]:
			return fmt.Errorf("%s: unknown key %q: keys are flag names without the dashes, such as \"maxforks\"", c.file, key)
		}
	}
	return nil
}

// Resolve returns the file's value for flag, unless its WSGATE_ variable is
// set: the environment wins over the file. A value the flag cannot take is
// an error naming the key and the file.
func (c configResolver) Resolve(ctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
	for _, env := range flag.Envs {
		if _, set := os.LookupEnv(env); set {
			return nil, nil
		}
	}
	value, err := c.Resolver.Resolve(ctx, parent, flag)
	if err != nil || value == nil {
		return value, err
	}
	scratch := reflect.New(flag.Target.Type()).Elem()
	if scratch.Kind() == reflect.Pointer {
		scratch.Set(reflect.New(scratch.Type().Elem()))
	}
	scan := kong.ScanFromTokens(kong.Token{Type: kong.FlagValueToken, Value: value})
	if err := flag.Mapper.Decode(&kong.DecodeContext{Value: flag.Value, Scan: scan}, scratch); err != nil {
		return nil, fmt.Errorf("%s: key %q: %w", c.file, c.keyOf(flag), err)
	}
	return value, nil
}

// keyOf is the key of the file that holds flag's value.
func (c configResolver) keyOf(flag *kong.Flag) string {
	if underscored := strings.ReplaceAll(flag.Name, "-", "_"); c.keys[underscored] != nil {
		return underscored
	}
	return flag.Name
}

// limits are the configured bounds, for the metrics.
func (c *CLI) limits() metrics.Limits {
	return metrics.Limits{
		Connections:           c.MaxConns,
		Forks:                 c.MaxForks,
		ConnectionsPerAddress: c.MaxConnsPerIP,
		HandshakeRate:         c.RateLimit,
		MessageBytes:          c.MaxFrameSize,
		LineBytes:             c.MaxLineSize,
		Queue:                 c.Queue,
		Lifetime:              c.MaxLifetime,
		Idle:                  c.IdleTimeout,
	}
}

// maxListedEndpoints bounds the endpoints whose series are made at
// start-up: a --dir pointed at a whole tree costs no more than this.
const maxListedEndpoints = 1000

// endpoints are the endpoints served at start-up, for the metrics: "/" for a
// single command, every executable under --dir up to maxListedEndpoints (one
// added later, or past the bound, shows at its first use).
func (c *CLI) endpoints() []string {
	if c.Dir == "" {
		return []string{"/"}
	}
	router, err := httppolicy.NewDirRouter(c.Dir)
	if err != nil {
		return nil // gateway.New says what is wrong with --dir
	}
	return router.Endpoints(maxListedEndpoints)
}
