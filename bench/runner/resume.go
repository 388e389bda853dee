package main

// The resume benchmark (scripts/bench resume): the fan-out scenario on one
// wsgate, with every subscriber a plain client, then with half of them
// following positions (?last_event_id=), side by side in each repetition.
// What following costs the gateway is one tagged frame per line, made once
// for all such clients, and a greeting per client: the throughput and the
// CPU per delivery should barely move.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func init() { subcommands["resume"] = resumeMain }

// resumeMetrics are the rows, in the order resumeOnce returns them.
var resumeMetrics = []metric{
	{"delivered messages/s", true, 0},
	{"gateway CPU per delivery (µs)", false, 2},
	{"lines lost", false, 0},
}

// resumeSetup is one column: which subscribers follow positions.
type resumeSetup struct {
	name        string
	resumeEvery int
}

// resumeMain runs the resume benchmark from its command line and returns
// the exit code.
func resumeMain(args []string) int {
	fs := flag.NewFlagSet("runner resume", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "repetitions per set-up; the table shows medians")
	smoke := fs.Bool("smoke", false, "tiny counts and 1 repetition: checks correctness, not speed")
	wsgate := fs.String("wsgate", "", "path to the wsgate binary")
	producer := fs.String("producer", "", "path to the fan-out producer (bench/producer)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sz := fullSizes
	if *smoke {
		sz = smokeSizes
		if !flagSet(fs, "reps") {
			*reps = 1
		}
	}
	kind := serverKind{name: "wsgate", path: *wsgate, frameFlag: true}
	if err := errors.Join(checkExecutable(kind), checkExecutable(serverKind{name: "producer", path: *producer})); err != nil {
		fmt.Fprintln(os.Stderr, "runner resume:", err)
		return 2
	}
	if err := raiseFileLimit(fileLimit); err != nil {
		fmt.Fprintln(os.Stderr, "runner resume: cannot raise the open-file limit:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	setups := []resumeSetup{{name: "all plain"}, {name: "half following positions", resumeEvery: 2}}
	cells := []*cell{{}, {}}
	for rep := range *reps {
		// Each repetition starts with the other set-up: neither always runs
		// first (cold) or last (warm), nor always meets the same moment of
		// a shared machine's load.
		for k := range setups {
			i := (k + rep) % len(setups)
			su := setups[i]
			if ctx.Err() != nil {
				return 130
			}
			fmt.Fprintf(os.Stderr, "rep %d/%d  resume %-26s ", rep+1, *reps, su.name)
			start := time.Now()
			plan := sz.fanout
			plan.resumeEvery = su.resumeEvery
			vals, err := resumeOnce(ctx, kind, *producer, plan, sz.dialWorkers)
			took := time.Since(start).Round(100 * time.Millisecond)
			if err != nil {
				cells[i].failures = append(cells[i].failures, fmt.Sprintf("rep %d: %v", rep+1, err))
				fmt.Fprintf(os.Stderr, "FAIL (%v): %v\n", took, err)
				continue
			}
			cells[i].values = append(cells[i].values, vals)
			fmt.Fprintf(os.Stderr, "ok (%v)  %.0f msgs/s  %.2f µs\n", took, vals[0], vals[1])
		}
	}
	writeResumeTable(os.Stdout, sz.fanout, *reps, setups, cells)
	for _, c := range cells {
		if len(c.failures) > 0 {
			return 1
		}
	}
	return 0
}

// resumeOnce runs the fan-out plan once on a fresh wsgate.
func resumeOnce(ctx context.Context, kind serverKind, producer string, plan fanPlan, workers int) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := startServer(ctx, kind, true, plan.command(producer))
	if err != nil {
		return nil, err
	}
	defer s.stop()
	r, err := runFan(ctx, s, plan, workers, false)
	if err != nil {
		return nil, err
	}
	return []float64{perSecond(int(plan.lines)*plan.subs, r.elapsed), r.cpuPerDelivery(plan.lines), float64(r.lost)}, nil
}

// writeResumeTable prints the markdown table of medians, the following
// set-up against the plain one.
func writeResumeTable(w io.Writer, plan fanPlan, reps int, setups []resumeSetup, cells []*cell) {
	fmt.Fprintf(w, "Fan-out on one wsgate: %s; median of %d repetition(s).\n\n", plan.describe(), reps)
	fmt.Fprintf(w, "| metric | %s | %s | ratio |\n|---|--:|--:|--:|\n", setups[0].name, setups[1].name)
	for i, m := range resumeMetrics {
		fmt.Fprintf(w, "| %s%s | %s | %s | %s |\n", m.name, arrow(m), cells[0].text(i, m), cells[1].text(i, m), ratio(cells[1], cells[0], i))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better. The ratio divides the following set-up's median by the plain one's.")
	for i, c := range cells {
		for _, f := range c.failures {
			fmt.Fprintf(w, "\n- FAIL: %s: %s", setups[i].name, f)
		}
	}
	fmt.Fprintln(w)
}
