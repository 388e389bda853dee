package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/wsgate/wsgate/gateway"
)

// CLI is wsgate's command line. Flags keep websocketd's names and meanings;
// each can also come from WSGATE_<NAME> or from the --config file.
type CLI struct {
	Port    int      `help:"TCP port to listen on (0 picks a free one and logs it)." default:"80" group:"Listening"`
	Address []string `help:"Address to listen on; repeat for several. IPv6 as [::1]. Default: all interfaces." placeholder:"ADDR" group:"Listening"`

	MaxForks     int   `name:"maxforks" help:"Most concurrent child processes; 0 means unlimited. Over it, connections close with 1013." default:"1024" group:"Limits"`
	MaxFrameSize int64 `name:"maxframesize" help:"Largest message accepted from a client, in bytes; larger ones close with 1009." default:"1048576" group:"Limits"`
	MaxLineSize  int   `name:"maxlinesize" help:"Longest output line sent, in bytes; a longer one closes the connection with 1009." default:"16777216" group:"Limits"`
	CloseMS      int   `name:"closems" help:"Milliseconds added to each step of the stop sequence (stdin close, SIGINT, SIGTERM, SIGKILL)." default:"0" group:"Limits"`
	PingMS       int   `name:"pingms" help:"Ping interval in milliseconds; a client silent for two intervals is dropped. 0 turns pings off." default:"30000" group:"Limits"`
	WriteTimeout int   `name:"writetimeout" help:"Seconds a client may accept no data before it is dropped." default:"60" group:"Limits"`

	Binary  bool     `help:"Binary mode: raw bytes both ways instead of lines." group:"Child process"`
	PassEnv []string `name:"passenv" help:"Variables of wsgate's environment passed to the child." default:"PATH,LD_LIBRARY_PATH" placeholder:"A,B" group:"Child process"`

	LogLevel  string `name:"loglevel" help:"Least level logged: debug, trace, access, info, error or fatal." default:"access" enum:"debug,trace,access,info,error,fatal" group:"Logging"`
	LogFormat string `name:"logformat" help:"Log format: text or json." default:"text" enum:"text,json" group:"Logging"`

	Config  kong.ConfigFlag  `help:"JSON file of flag values, keyed by flag name; the command line and environment win." placeholder:"FILE" group:"Other"`
	Version kong.VersionFlag `help:"Print the version and exit." group:"Other"`
	License bool             `help:"Print the license and exit." group:"Other"`

	Command []string `arg:"" optional:"" passthrough:"partial" help:"Program to run for each connection, with its arguments."`
}

// parseCLI parses args (without the program name) into a CLI.
func parseCLI(args []string, options ...kong.Option) (*CLI, error) {
	var cli CLI
	options = append([]kong.Option{
		kong.Name("wsgate"),
		kong.Description("Turns a program that reads stdin and writes stdout into a WebSocket service."),
		kong.Vars{"version": "wsgate " + version},
		kong.DefaultEnvars("WSGATE"),
		kong.Configuration(kong.JSON),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
	}, options...)
	parser, err := kong.New(&cli, options...)
	if err != nil {
		return nil, err
	}
	if _, err := parser.Parse(args); err != nil {
		return nil, err
	}
	if len(cli.Command) > 0 && cli.Command[0] == "--" {
		cli.Command = cli.Command[1:]
	}
	return &cli, nil
}

// validate checks what kong cannot: the command and the ranges of values.
func (c *CLI) validate() error {
	switch {
	case len(c.Command) == 0:
		return errors.New("no command given: usage is wsgate [flags] COMMAND [ARGS...], e.g. wsgate --port=8080 ./script.sh")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("--port=%d is out of range: use 0 to 65535", c.Port)
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
	}
	return nil
}

// resolveCommand finds the command on PATH, as a shell would.
func (c *CLI) resolveCommand() error {
	path, err := exec.LookPath(c.Command[0])
	if err != nil {
		var execErr *exec.Error
		if errors.As(err, &execErr) && errors.Is(execErr.Err, exec.ErrNotFound) {
			return fmt.Errorf("command %q not found: give a path or a program on PATH", c.Command[0])
		}
		return fmt.Errorf("command %q cannot be run: %v", c.Command[0], errors.Unwrap(err))
	}
	c.Command[0] = path
	return nil
}

// gatewayConfig turns the flags into the gateway's configuration.
func (c *CLI) gatewayConfig() gateway.Config {
	return gateway.Config{
		Command:        c.Command,
		Binary:         c.Binary,
		MaxForks:       c.MaxForks,
		MaxMessageSize: c.MaxFrameSize,
		MaxLineSize:    c.MaxLineSize,
		CloseGrace:     time.Duration(c.CloseMS) * time.Millisecond,
		PingInterval:   time.Duration(c.PingMS) * time.Millisecond,
		WriteTimeout:   time.Duration(c.WriteTimeout) * time.Second,
		PassEnv:        passedEnv(c.PassEnv),
		ServerSoftware: "wsgate/" + version,
	}
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

// listenAddrs joins each --address with --port; no address means all
// interfaces.
func (c *CLI) listenAddrs() []string {
	if len(c.Address) == 0 {
		return []string{fmt.Sprintf(":%d", c.Port)}
	}
	addrs := make([]string, len(c.Address))
	for i, a := range c.Address {
		host := strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		addrs[i] = joinHostPort(host, c.Port)
	}
	return addrs
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}
