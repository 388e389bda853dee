package main

// The bus benchmark (scripts/bench bus): one broadcast stream with many
// subscribers, held by one wsgate instance alone, then by three instances
// sharing it through Redis (--bus), side by side. It runs the fan-out
// scenarios' producer and subscribers (bench/producer, subscriber.go) at a
// steady rate, the subscribers spread evenly over the instances, and adds
// what Redis costs. It has its own table: its columns are set-ups of
// wsgate, not the servers the other scenarios compare.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/internal/fanout"
)

func init() { subcommands["bus"] = busMain }

// The bus benchmark's plans: the producer's lines at a steady rate; acks
// only at the last line (a window of four times the lines), so that the
// subscribers' input does not weigh on Redis's figures.
var (
	busFull  = fanPlan{subs: 3000, lines: 2000, rate: 100, window: 4 * 2000, hold: time.Second}
	busSmoke = fanPlan{subs: 30, lines: 200, rate: 100, window: 4 * 200, hold: 200 * time.Millisecond}
)

// busInstances is how many instances share the stream in the bus set-up.
const busInstances = 3

// busSetup is one column: how many instances hold the stream, and whether
// they share it through Redis.
type busSetup struct {
	name      string
	instances int
	bus       bool
}

// busMetrics are the rows, in the order busOnce returns them.
var busMetrics = []metric{
	{"latency p50 (ms)", false, 2},
	{"latency p99 (ms)", false, 2},
	{"latency max (ms)", false, 1},
	{"lines delivered/s", true, 0},
	{"gateways CPU (% of a core)", false, 1},
	{"Redis CPU (% of a core)", false, 1},
	{"Redis CPU per line (µs)", false, 1},
}

// busMain runs the bus benchmark from its command line and returns the exit
// code.
func busMain(args []string) int {
	fs := flag.NewFlagSet("runner bus", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "repetitions per set-up; the table shows medians")
	smoke := fs.Bool("smoke", false, "tiny counts and 1 repetition: checks correctness, not speed")
	wsgate := fs.String("wsgate", "", "path to the wsgate binary")
	producer := fs.String("producer", "", "path to the fan-out producer (bench/producer)")
	redis := fs.String("redis-server", "redis-server", "path to redis-server")
	subscribers := fs.Int("subscribers", 0, "override the number of subscribers")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	plan := busFull
	if *smoke {
		plan = busSmoke
		if !flagSet(fs, "reps") {
			*reps = 1
		}
	}
	if *subscribers > 0 {
		plan.subs = *subscribers
	}
	kind := serverKind{name: "wsgate", path: *wsgate, frameFlag: true}
	err := errors.Join(checkExecutable(kind), checkExecutable(serverKind{name: "producer", path: *producer}))
	redisPath, lookErr := exec.LookPath(*redis)
	if err = errors.Join(err, lookErr); err != nil {
		fmt.Fprintln(os.Stderr, "runner bus:", err)
		return 2
	}
	if err := raiseFileLimit(fileLimit); err != nil {
		fmt.Fprintln(os.Stderr, "runner bus: cannot raise the open-file limit:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	setups := []busSetup{
		{name: "1 instance", instances: 1},
		{name: fmt.Sprintf("%d instances + Redis", busInstances), instances: busInstances, bus: true},
	}
	cells := []*cell{{}, {}}
	for rep := range *reps {
		for i, su := range setups {
			if ctx.Err() != nil {
				return 130
			}
			fmt.Fprintf(os.Stderr, "rep %d/%d  bus %-22s ", rep+1, *reps, su.name)
			start := time.Now()
			vals, err := busOnce(ctx, kind, *producer, redisPath, su, plan)
			took := time.Since(start).Round(100 * time.Millisecond)
			if err != nil {
				cells[i].failures = append(cells[i].failures, fmt.Sprintf("rep %d: %v", rep+1, err))
				fmt.Fprintf(os.Stderr, "FAIL (%v): %v\n", took, err)
				continue
			}
			cells[i].values = append(cells[i].values, vals)
			fmt.Fprintf(os.Stderr, "ok (%v)  p99=%.2fms\n", took, vals[1])
		}
	}
	writeBusTable(os.Stdout, plan, *reps, setups, cells)
	for _, c := range cells {
		if len(c.failures) > 0 {
			return 1
		}
	}
	return 0
}

// writeBusTable prints the markdown table of medians, with the bus set-up
// against one instance.
func writeBusTable(w io.Writer, plan fanPlan, reps int, setups []busSetup, cells []*cell) {
	fmt.Fprintf(w, "One broadcast stream: %s, spread evenly over the instances; median of %d repetition(s).\n\n",
		plan.describe(), reps)
	fmt.Fprintf(w, "| metric | %s | %s | ratio |\n|---|--:|--:|--:|\n", setups[0].name, setups[1].name)
	for i, m := range busMetrics {
		alone, ratioText := cells[0].text(i, m), ratio(cells[1], cells[0], i)
		if strings.HasPrefix(m.name, "Redis") {
			alone, ratioText = "-", "-" // one instance has no Redis
		}
		fmt.Fprintf(w, "| %s%s | %s | %s | %s |\n", m.name, arrow(m), alone, cells[1].text(i, m), ratioText)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better. The ratio divides the bus set-up's median by one instance's.")
	for i, c := range cells {
		for _, f := range c.failures {
			fmt.Fprintf(w, "\n- FAIL: %s: %s", setups[i].name, f)
		}
	}
	fmt.Fprintln(w)
}

// busOnce runs one set-up once: Redis if it has a bus, the instances, the
// subscribers; then the lines, measured from go to the last line reaching
// the last subscriber, every one checked.
func busOnce(ctx context.Context, kind serverKind, producer, redisPath string, su busSetup, plan fanPlan) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(float64(plan.lines)/plan.rate*float64(time.Second))+3*time.Minute)
	defer cancel()
	if err := checkFanFileLimit(plan.subs); err != nil {
		return nil, err
	}
	command := plan.command(producer)
	var redis *redisServer
	if su.bus {
		var err error
		if redis, err = startRedis(ctx, redisPath); err != nil {
			return nil, err
		}
		defer redis.stop()
		command = append([]string{"--bus=" + redis.url()}, command...)
	}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var urls []string
	for range su.instances {
		s, err := startServer(ctx, kind, true, command)
		if err != nil {
			return nil, err
		}
		servers, urls = append(servers, s), append(urls, s.url)
	}
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	subs, err := openSubscribers(runCtx, urls, plan, busDialWorkers, true, stopRun)
	if err != nil {
		return nil, err
	}
	defer closeSubscribers(subs, busDialWorkers)
	if err := waitReady(runCtx, subs); err != nil {
		return nil, err
	}
	cpu0, err := busCPU(servers, redis)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := subs[len(subs)-1].send([]byte(fanout.Go)); err != nil { // from the last instance
		return nil, fmt.Errorf("send %q: %w", fanout.Go, err)
	}
	if err := waitDone(runCtx, subs); err != nil {
		return nil, err
	}
	cpu1, err := busCPU(servers, redis)
	if err != nil {
		return nil, err
	}
	elapsed, latencies, lost := gather(subs, start)
	if lost != 0 {
		return nil, fmt.Errorf("%d lines lost", lost)
	}
	redisCPU := cpu1.redis - cpu0.redis
	return []float64{
		millis(percentile(latencies, 50)),
		millis(percentile(latencies, 99)),
		millis(percentile(latencies, 100)),
		perSecond(len(latencies), elapsed),
		100 * (cpu1.gateways - cpu0.gateways).Seconds() / elapsed.Seconds(),
		100 * redisCPU.Seconds() / elapsed.Seconds(),
		perItemMicros(redisCPU, int(plan.lines)),
	}, nil
}

// busDialWorkers is how many subscribers connect at once.
const busDialWorkers = 50

// cpuReading is the CPU the gateways and Redis have used so far.
type cpuReading struct{ gateways, redis time.Duration }

func busCPU(servers []*server, redis *redisServer) (cpuReading, error) {
	var r cpuReading
	for _, s := range servers {
		d, err := cpuTime(s.pid())
		if err != nil {
			return r, err
		}
		r.gateways += d
	}
	if redis != nil {
		d, err := cpuTime(redis.cmd.Process.Pid)
		if err != nil {
			return r, err
		}
		r.redis = d
	}
	return r, nil
}

// redisServer is a redis-server on a free loopback port, without
// persistence.
type redisServer struct {
	cmd  *exec.Cmd
	port int
	done chan struct{}
}

func (r *redisServer) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

func startRedis(ctx context.Context, path string, extra ...string) (*redisServer, error) {
	return startRedisWith(ctx, path, func(port int, dir string) []string {
		return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", ""}, extra...)
	})
}

// startRedisWith starts path with the arguments args gives for a free port
// and a temporary directory (a redis-server, or a sentinel), and waits
// until the port accepts connections.
func startRedisWith(ctx context.Context, path string, args func(port int, dir string) []string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wsgate-bench-redis-")
	if err != nil {
		return nil, err
	}
	r := &redisServer{port: port, done: make(chan struct{})}
	r.cmd = exec.Command(path, args(port, dir)...)
	r.cmd.Stdout, r.cmd.Stderr = io.Discard, io.Discard
	if err := r.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	go func() {
		_ = r.cmd.Wait()
		os.RemoveAll(dir)
		close(r.done)
	}()
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return r, nil
		}
		select {
		case <-r.done:
			return nil, errors.New("redis-server exited at start-up")
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(readyPoll):
		}
	}
}

func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	<-r.done
}
