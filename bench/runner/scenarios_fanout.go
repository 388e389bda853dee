package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/internal/fanout"
)

// The fan-out scenarios run the servers in broadcast mode: one shared
// producer (bench/producer) for every subscriber. Subscribers connect and
// say hello; the producer answers "ready" once all have; the subscribers
// idle while the gateway's RSS is sampled; then "go" starts the numbered
// lines, which every subscriber checks, in order and byte for byte.

// fanLineSize is the size of every numbered line, without its newline.
const fanLineSize = 64

// fdsPerSubscriber is what a subscriber costs the runner (its socket) and
// what it should cost a broadcast server; the shared child's pipes are in
// fileReserve.
const fdsPerSubscriber = 1

// fanPlan is one fan-out run: the subscribers, the lines printed after go,
// and how the producer paces them.
type fanPlan struct {
	subs   int
	lines  int64
	rate   float64       // lines a second; 0 means on credit, as fast as the subscribers read
	window int64         // the credit window; subscribers ack every window/4 lines
	hold   time.Duration // how long subscribers idle after ready, while RSS is sampled
	// resumeEvery makes every resumeEvery-th subscriber (from the first)
	// follow positions (?last_event_id=), as a resuming client does: it gets
	// each line tagged with its position, which it checks. 0 for none.
	resumeEvery int
}

// resumes reports whether subscriber i follows positions.
func (p fanPlan) resumes(i int) bool { return p.resumeEvery > 0 && i%p.resumeEvery == 0 }

// command is the producer's command line for the plan.
func (p fanPlan) command(producer string) []string {
	cmd := []string{producer,
		"--subscribers=" + strconv.Itoa(p.subs),
		"--lines=" + strconv.FormatInt(p.lines, 10),
		"--size=" + strconv.Itoa(fanLineSize),
		"--window=" + strconv.FormatInt(p.window, 10),
	}
	if p.rate > 0 {
		cmd = append(cmd, "--rate="+strconv.FormatFloat(p.rate, 'f', -1, 64))
	}
	return cmd
}

// ackEvery is how many lines a subscriber reads between acks: a quarter of
// the window, so that the producer gets credit well before it runs out.
func (p fanPlan) ackEvery() int64 { return max(1, p.window/4) }

// describe states the plan in a few words for the table's header.
func (p fanPlan) describe() string {
	pace := fmt.Sprintf("on a %d-line credit window", p.window)
	if p.rate > 0 {
		pace = fmt.Sprintf("at %s lines/s", formatNumber(p.rate, 0))
	}
	following := ""
	if p.resumeEvery > 0 {
		following = fmt.Sprintf(", 1 in %d following positions", p.resumeEvery)
	}
	return fmt.Sprintf("%s subscribers%s, %s lines of %d B %s",
		formatNumber(float64(p.subs), 0), following, formatNumber(float64(p.lines), 0), fanLineSize, pace)
}

// describeFanout states the fan-out scenarios' plans.
func describeFanout(sz sizes) string {
	return fmt.Sprintf("fanout %s; fanout-lat %s; fanout-10k %s",
		sz.fanout.describe(), sz.fanoutLat.describe(), sz.fanout10k.describe())
}

// fanRun is what one fan-out run measured. RSS figures are the gateway's,
// in KiB.
type fanRun struct {
	subs      int
	rssBefore int64           // VmRSS before any subscriber connected
	rssIdle   int64           // the highest VmRSS while the subscribers idled
	rssPeak   int64           // VmHWM once every line was delivered
	openFiles int             // with every subscriber connected
	elapsed   time.Duration   // from go to the last line reaching the last subscriber
	cpu       time.Duration   // the gateway's CPU time over the same span
	latencies []time.Duration // every line's, for every subscriber, if recorded
	lost      int64           // lines some subscriber did not get
}

// cpuPerDelivery is the gateway's CPU time per line delivered to one
// subscriber, in µs; it includes taking in the subscribers' acks.
func (r fanRun) cpuPerDelivery(lines int64) float64 {
	return perItemMicros(r.cpu, int(lines)*r.subs)
}

// perSubscriber is what each subscriber added to the gateway's RSS, in KiB,
// for a reading of rss KiB.
func (r fanRun) perSubscriber(rss int64) float64 {
	return float64(rss-r.rssBefore) / float64(r.subs)
}

// runFanout measures delivered messages a second on credit, and RSS per
// subscriber while idle and at the peak of the run.
func runFanout(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	p := sz.fanout
	r, err := runFan(ctx, s, p, sz.dialWorkers, false)
	if err != nil {
		return nil, err
	}
	return []float64{
		perSecond(int(p.lines)*p.subs, r.elapsed),
		r.cpuPerDelivery(p.lines),
		r.perSubscriber(r.rssIdle),
		r.perSubscriber(r.rssPeak),
		float64(r.lost),
	}, nil
}

// runFanoutLatency measures line latency at a steady rate.
func runFanoutLatency(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	p := sz.fanoutLat
	r, err := runFan(ctx, s, p, sz.dialWorkers, true)
	if err != nil {
		return nil, err
	}
	return []float64{
		millis(percentile(r.latencies, 50)),
		millis(percentile(r.latencies, 99)),
		r.cpuPerDelivery(p.lines),
		float64(r.lost),
	}, nil
}

// runFanout10k measures line latency with many subscribers, and what holding
// them costs the gateway in memory and file descriptors.
func runFanout10k(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	p := sz.fanout10k
	r, err := runFan(ctx, s, p, sz.dialWorkers, true)
	if err != nil {
		return nil, err
	}
	return []float64{
		millis(percentile(r.latencies, 50)),
		millis(percentile(r.latencies, 99)),
		r.cpuPerDelivery(p.lines),
		r.perSubscriber(r.rssIdle),
		float64(r.openFiles),
		float64(r.lost),
	}, nil
}

// runFan connects the plan's subscribers, samples the gateway while they
// idle, starts the lines and waits until every subscriber has every one.
// The first failure of any subscriber cancels the run, which closes every
// connection (dial ties them to the context), so that nobody waits out the
// time limit for lines that will not come.
func runFan(ctx context.Context, s *server, p fanPlan, workers int, recordLatency bool) (fanRun, error) {
	r, err := measureFan(ctx, s, p, workers, recordLatency)
	if err != nil {
		if last := s.log.lastLine(); last != "" {
			err = fmt.Errorf("%w; the server's last output: %s", err, last)
		}
	}
	return r, err
}

// measureFan is runFan without the server's last words.
func measureFan(ctx context.Context, s *server, p fanPlan, workers int, recordLatency bool) (fanRun, error) {
	r := fanRun{subs: p.subs}
	if err := checkFanFileLimit(p.subs); err != nil {
		return r, err
	}
	var err error
	if r.rssBefore, err = statusKiB(s.pid(), "VmRSS"); err != nil {
		return r, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	subs, err := openSubscribers(ctx, []string{s.url}, p, workers, recordLatency, cancel)
	if err != nil {
		return r, err
	}
	defer closeSubscribers(subs, workers)
	if err := waitReady(ctx, subs); err != nil {
		return r, err
	}
	if r.rssIdle, err = holdSampling(ctx, s.pid(), p.hold); err != nil {
		return r, err
	}
	if r.openFiles, err = countOpenFiles(s.pid()); err != nil {
		return r, err
	}
	cpu0, err := cpuTime(s.pid())
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := subs[0].send([]byte(fanout.Go)); err != nil {
		return r, fmt.Errorf("send %q: %w", fanout.Go, err)
	}
	if err := waitDone(ctx, subs); err != nil {
		return r, err
	}
	cpu1, err := cpuTime(s.pid())
	if err != nil {
		return r, err
	}
	r.cpu = cpu1 - cpu0
	if r.rssPeak, err = statusKiB(s.pid(), "VmHWM"); err != nil {
		return r, err
	}
	r.elapsed, r.latencies, r.lost = gather(subs, start)
	if r.lost != 0 { // every subscriber that returned got every line: a bug here
		return r, fmt.Errorf("%d lines lost", r.lost)
	}
	return r, nil
}

// gather collects, once every subscriber is done, the time from start to the
// last arrival, every latency recorded, and the lines missing anywhere.
func gather(subs []*subscriber, start time.Time) (time.Duration, []time.Duration, int64) {
	var last time.Time
	var lat []time.Duration
	var lost int64
	for _, sub := range subs {
		if sub.finished.After(last) {
			last = sub.finished
		}
		lat = append(lat, sub.latencies...)
		lost += sub.plan.lines - sub.got
	}
	return last.Sub(start), lat, lost
}

// countOpenFiles counts the file descriptors the process has open.
func countOpenFiles(pid int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds), err
}

// checkFanFileLimit fails with advice when RLIMIT_NOFILE, which the servers
// inherit from the runner, cannot hold n subscribers.
func checkFanFileLimit(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if need := uint64(fdsPerSubscriber*n + fileReserve); uint64(lim.Cur) < need {
		return fmt.Errorf("open-file limit %d is below the %d that %d subscribers need: raise `ulimit -n`", lim.Cur, need, n)
	}
	return nil
}
