package main

// The portable benchmark (scripts/bench portable): what the portable
// process backend, the one macOS and FreeBSD run (built on Linux with the
// wsgate_portable tag), costs against the Linux one (pidfd, epoll sets,
// the fork thread). The spawn, echo, stream and idle scenarios on each
// binary in turn, in one table, the portable one against the Linux one.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func init() { subcommands["portable"] = portableMain }

// portableScenarios are what the backends differ in: starting and reaping
// children (spawn), a child's input and output (echo, stream), what an
// idle connection holds (idle), and what an idle broadcast member holds
// (fanout: the readiness set).
var portableScenarios = []string{"spawn", "echo", "stream", "idle", "fanout"}

// backendColumn is one wsgate binary of the comparison.
type backendColumn struct {
	label string
	kind  serverKind
}

// portableMain runs the portable benchmark from its command line and
// returns the exit code.
func portableMain(args []string) int {
	fs := flag.NewFlagSet("runner portable", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "repetitions per scenario and backend; the table shows medians")
	smoke := fs.Bool("smoke", false, "tiny counts and 1 repetition: checks correctness, not speed")
	linux := fs.String("wsgate", "", "path to wsgate built with the Linux backend")
	portable := fs.String("wsgate-portable", "", "path to wsgate built with -tags wsgate_portable")
	producer := fs.String("producer", "", "path to the fan-out scenario's producer (bench/producer)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := config{reps: *reps, smoke: *smoke, sizes: fullSizes, producer: *producer}
	if *smoke {
		cfg.sizes = smokeSizes
		if !flagSet(fs, "reps") {
			cfg.reps = 1
		}
	}
	if err := checkExecutable(serverKind{name: "producer", path: *producer}); err != nil {
		fmt.Fprintln(os.Stderr, "runner portable:", err)
		return 2
	}
	columns := []backendColumn{
		{"Linux backend", serverKind{name: "wsgate", path: *linux, frameFlag: true, broadcastFlag: true}},
		{"portable backend", serverKind{name: "wsgate", path: *portable, frameFlag: true, broadcastFlag: true}},
	}
	for _, col := range columns {
		if err := checkExecutable(col.kind); err != nil {
			fmt.Fprintf(os.Stderr, "runner portable: %s: %v\n", col.label, err)
			return 2
		}
	}
	var err error
	if cfg.scenarios, err = pickScenarios(strings.Join(portableScenarios, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "runner portable:", err)
		return 2
	}
	if err := raiseFileLimit(fileLimit); err != nil {
		fmt.Fprintln(os.Stderr, "runner portable: cannot raise the open-file limit:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := newResults()
	for rep := range cfg.reps {
		for _, sc := range cfg.scenarios {
			for i := range columns { // rotated, so that neither always runs first
				col := columns[(i+rep)%len(columns)]
				if ctx.Err() != nil {
					return 130
				}
				runBackendCell(ctx, res.get(sc.name, col.label), sc, col, cfg, rep)
			}
		}
	}
	printHeader(cfg, nil)
	writePortableTable(os.Stdout, res, cfg.scenarios, columns)
	if res.failed() {
		return 1
	}
	return 0
}

// runBackendCell runs one scenario once on one backend's binary and records
// the outcome.
func runBackendCell(ctx context.Context, c *cell, sc scenario, col backendColumn, cfg config, rep int) {
	fmt.Fprintf(os.Stderr, "rep %d/%d  %-8s %-17s ", rep+1, cfg.reps, sc.name, col.label)
	timeout := sc.timeout
	if cfg.smoke {
		timeout = min(timeout, smokeTimeout)
	}
	start := time.Now()
	vals, err := runOnce(ctx, sc, col.kind, cfg, timeout)
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		c.failures = append(c.failures, fmt.Sprintf("rep %d: %v", rep+1, err))
		fmt.Fprintf(os.Stderr, "FAIL (%v): %v\n", took, err)
		return
	}
	c.values = append(c.values, vals)
	fmt.Fprintf(os.Stderr, "ok (%v)  %s=%s\n", took, sc.metrics[0].name, formatNumber(vals[0], sc.metrics[0].decimals))
}

// writePortableTable prints the medians of both backends and their ratio.
func writePortableTable(w io.Writer, res *results, selected []scenario, columns []backendColumn) {
	fmt.Fprintf(w, "| scenario | metric | %s | %s | portable/Linux |\n", columns[0].label, columns[1].label)
	fmt.Fprintln(w, "|---|---|--:|--:|--:|")
	for _, sc := range selected {
		row := res.cells[sc.name]
		for i, m := range sc.metrics {
			linux, portable := row[columns[0].label], row[columns[1].label]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", sc.name, m.name+arrow(m), linux.text(i, m), portable.text(i, m), ratio(portable, linux, i))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better. The ratio divides the portable backend's median by the Linux one's.")
	for _, sc := range selected {
		for _, col := range columns {
			if c := res.cells[sc.name][col.label]; c != nil {
				for _, f := range c.failures {
					fmt.Fprintf(w, "\n- FAIL: %s on the %s: %s", sc.name, col.label, f)
				}
			}
		}
	}
	fmt.Fprintln(w)
}
