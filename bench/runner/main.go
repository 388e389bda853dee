// Command runner is wsgate's benchmark harness. It starts wsgate, websocketd
// and the floor server (bench/floor) on loopback, runs every scenario on each
// of them in turn for every repetition, checks every byte that comes back,
// and prints a markdown table of medians with ratios to stdout; progress goes
// to stderr. It exits 1 if any correctness check failed.
//
// scripts/bench builds the binaries and calls it; see that script for usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// fileLimit is the RLIMIT_NOFILE the runner asks for, enough for the scale
// scenario's 10,000 connections on both sides with room to spare.
const fileLimit = 200_000

// smokeTimeout caps every scenario's time limit under --smoke, whose counts
// take about a second on any server that works at all.
const smokeTimeout = 30 * time.Second

// config is everything the command line decides.
type config struct {
	reps      int
	sizes     sizes
	smoke     bool
	scenarios []scenario
	servers   []serverKind
	producer  string // bench/producer, the shared child of the fan-out scenarios
}

// subcommands are benchmarks with tables of their own, and helper commands
// the benchmarks run, by the name given as the first argument; each file
// that has one registers it.
var subcommands = map[string]func(args []string) int{}

func main() {
	if len(os.Args) > 1 && subcommands[os.Args[1]] != nil {
		os.Exit(subcommands[os.Args[1]](os.Args[2:]))
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // the flag package has printed the usage
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, cfg))
}

// parseFlags turns the command line into a config and checks the binaries.
func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "repetitions per scenario and server; the table shows medians")
	smoke := fs.Bool("smoke", false, "tiny counts and 1 repetition: checks correctness, not speed")
	only := fs.String("only", "", "comma-separated scenarios to run (default all: "+scenarioNames(scenarios)+")")
	servers := fs.String("servers", strings.Join(serverOrder, ","), "comma-separated servers to compare")
	wsgate := fs.String("wsgate", "", "path to the wsgate binary")
	websocketd := fs.String("websocketd", "/usr/bin/websocketd", "path to the websocketd binary")
	floor := fs.String("floor", "", "path to the floor binary (bench/floor)")
	producer := fs.String("producer", "", "path to the fan-out scenarios' producer (bench/producer)")
	scaleConns := fs.Int("scale-conns", 0, "override the scale scenario's connection count")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := config{reps: *reps, smoke: *smoke, sizes: fullSizes}
	if *smoke {
		cfg.sizes = smokeSizes
		if !flagSet(fs, "reps") {
			cfg.reps = 1
		}
	}
	if *scaleConns > 0 {
		cfg.sizes.scaleConns = *scaleConns
	}
	if cfg.reps < 1 {
		return config{}, errors.New("--reps must be at least 1")
	}
	var err error
	if cfg.scenarios, err = pickScenarios(*only); err != nil {
		return config{}, err
	}
	// The bound is the floor's binary in another mode (bench/floor/bound.go).
	paths := map[string]string{"wsgate": *wsgate, "websocketd": *websocketd, "floor": *floor, "bound": *floor}
	if cfg.servers, err = pickServers(*servers, paths); err != nil {
		return config{}, err
	}
	cfg.producer = *producer
	if slices.ContainsFunc(cfg.scenarios, func(sc scenario) bool { return sc.broadcast }) {
		err = checkExecutable(serverKind{name: "producer", path: *producer})
	}
	return cfg, err
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// pickScenarios returns the scenarios named in a comma-separated list, in
// their standard order, or all of them for an empty list.
func pickScenarios(list string) ([]scenario, error) {
	if list == "" {
		return scenarios, nil
	}
	names := strings.Split(list, ",")
	var out []scenario
	for _, sc := range scenarios {
		if slices.Contains(names, sc.name) {
			out = append(out, sc)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.name == n }) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", n, scenarioNames(scenarios))
		}
	}
	return out, nil
}

// scenarioNames lists scenario names for help and error messages.
func scenarioNames(list []scenario) string {
	names := make([]string, len(list))
	for i, sc := range list {
		names[i] = sc.name
	}
	return strings.Join(names, ",")
}

// pickServers returns the servers named in a comma-separated list, in
// column order, after checking that each binary exists.
func pickServers(list string, paths map[string]string) ([]serverKind, error) {
	names := strings.Split(list, ",")
	for _, n := range names {
		if !slices.Contains(serverOrder, n) {
			return nil, fmt.Errorf("unknown server %q (have %s)", n, strings.Join(serverOrder, ","))
		}
	}
	var out []serverKind
	for _, name := range serverOrder {
		if !slices.Contains(names, name) {
			continue
		}
		kind := serverKind{
			name:          name,
			path:          paths[name],
			frameFlag:     name != "websocketd",
			broadcastFlag: name != "websocketd",
			broadcastOnly: name == "bound",
			direct:        name == "bound",
		}
		if err := checkExecutable(kind); err != nil {
			return nil, err
		}
		out = append(out, kind)
	}
	return out, nil
}

// run executes the benchmark and prints the table; it returns the exit code.
func run(ctx context.Context, cfg config) int {
	if err := raiseFileLimit(fileLimit); err != nil {
		fmt.Fprintln(os.Stderr, "runner: cannot raise the open-file limit:", err)
	}
	var notes []string
	if slices.ContainsFunc(cfg.scenarios, func(sc scenario) bool { return sc.name == "scale" }) {
		notes = fitScaleToFileLimit(&cfg.sizes)
	}
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "runner: warning:", n)
	}
	res := newResults()
	for rep := range cfg.reps {
		// Rotating the start keeps any one server from always running first
		// (cold caches) or last (warm ones) within a scenario.
		order := rotate(cfg.servers, rep)
		for _, sc := range cfg.scenarios {
			for _, kind := range order {
				if ctx.Err() != nil {
					fmt.Fprintln(os.Stderr, "runner: interrupted")
					return 130
				}
				if sc.broadcast && !kind.broadcastFlag || !sc.broadcast && kind.broadcastOnly {
					continue // no cell: the table shows "-"
				}
				runCell(ctx, res.get(sc.name, kind.name), sc, kind, cfg, rep)
			}
		}
	}
	printHeader(cfg, notes)
	res.writeTable(os.Stdout, cfg.scenarios)
	if res.failed() {
		return 1
	}
	return 0
}

// runCell runs one scenario once on one server, records the outcome and
// reports it on stderr.
func runCell(ctx context.Context, c *cell, sc scenario, kind serverKind, cfg config, rep int) {
	fmt.Fprintf(os.Stderr, "rep %d/%d  %-10s %-10s ", rep+1, cfg.reps, sc.name, kind.name)
	start := time.Now()
	timeout := sc.timeout
	if cfg.smoke {
		timeout = min(timeout, smokeTimeout)
	}
	vals, err := runOnce(ctx, sc, kind, cfg, timeout)
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		c.failures = append(c.failures, fmt.Sprintf("rep %d: %v", rep+1, err))
		fmt.Fprintf(os.Stderr, "FAIL (%v): %v\n", took, err)
		return
	}
	c.values = append(c.values, vals)
	var parts []string
	for i, m := range sc.metrics {
		parts = append(parts, m.name+"="+formatNumber(vals[i], m.decimals))
	}
	fmt.Fprintf(os.Stderr, "ok (%v)  %s\n", took, strings.Join(parts, "  "))
}

// runOnce starts a fresh server for the scenario (so that RSS and CPU
// readings belong to this scenario alone), runs it within timeout and stops
// the server.
func runOnce(ctx context.Context, sc scenario, kind serverKind, cfg config, timeout time.Duration) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	command := sc.command(cfg)
	if kind.name == "wsgate" {
		command = append(slices.Clone(sc.wsgateFlags), command...)
	}
	s, err := startServer(ctx, kind, sc.broadcast, command)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	vals, err := sc.run(ctx, s, cfg.sizes)
	if early := s.exitedEarly(); early != nil {
		return nil, errors.Join(err, early)
	}
	// Connections carry the context's deadline, so a stalled server shows
	// up as an i/o timeout that may fire just before the context notices.
	if end, _ := ctx.Deadline(); err != nil && !time.Now().Before(end) {
		return nil, fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return vals, err
}

// rotate returns list started at index by, wrapping around.
func rotate(list []serverKind, by int) []serverKind {
	by %= len(list)
	return append(slices.Clone(list[by:]), list[:by]...)
}

// printHeader says under which conditions the figures were taken.
func printHeader(cfg config, notes []string) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	size := "full"
	if cfg.smoke {
		size = "smoke"
	}
	fmt.Printf("Loopback, %s sizes, median of %d repetition(s), %d CPUs, Linux %s, runner built with %s.\n",
		size, cfg.reps, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Println(describeSizes(cfg.sizes))
	for _, n := range notes {
		fmt.Println("**Note:** " + n)
	}
	fmt.Println()
}

// describeSizes states the counts behind the figures in one line.
func describeSizes(sz sizes) string {
	return fmt.Sprintf("spawn %s connections from %d workers; echo %s x %d B with %d in flight; "+
		"stream `seq 1 %d`; deflate %s JSON lines of 160 B and deflate-book a quarter as many of 1 KB (wsgate with --compress); idle %s connections held %v; scale %s connections held %v; big %s bytes each way; %s.",
		formatNumber(float64(sz.spawnConns), 0), sz.spawnWorkers,
		formatNumber(float64(sz.echoMsgs), 0), echoSize, sz.echoInflight,
		sz.streamLines, formatNumber(float64(sz.deflateLines), 0), formatNumber(float64(sz.idleConns), 0), sz.idleHold,
		formatNumber(float64(sz.scaleConns), 0), sz.scaleHold, formatNumber(float64(sz.bigBytes), 0),
		describeFanout(sz))
}

// fitScaleToFileLimit lowers the scale scenario's connection count to what
// RLIMIT_NOFILE allows when the limit could not be raised (raising the hard
// limit needs CAP_SYS_RESOURCE, which containers often drop), and returns a
// note saying so; the run goes on with a smaller but honest scale figure.
func fitScaleToFileLimit(sz *sizes) []string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return []string{"cannot read the open-file limit: " + err.Error()}
	}
	fit := int((lim.Cur - fileReserve) / fdsPerConn)
	if lim.Cur <= fileReserve || sz.scaleConns <= fit {
		return nil
	}
	note := fmt.Sprintf("scale ran %s connections instead of %s: the open-file limit is %d and could not be raised (needs root with CAP_SYS_RESOURCE)",
		formatNumber(float64(fit), 0), formatNumber(float64(sz.scaleConns), 0), lim.Cur)
	sz.scaleConns = fit
	return []string{note}
}
