package main

// The failover benchmark (scripts/bench failover): a Redis Sentinel set-up
// (a master, a replica, three sentinels) under two wsgate instances that
// share one stream (--bus=redis+sentinel://...), read by clients that
// follow positions, spread over both. Once lines flow, the master is
// killed (SIGKILL). Each client reconnects with its last position until the
// sentinels have named the new master; it measures the time from the
// master's death to its first line over a new connection, and checks that
// it lost and repeated nothing.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
)

func init() { subcommands["failover"] = failoverMain }

// Failover set-up.
const (
	// failoverMaster is the name the sentinels know the master by.
	failoverMaster = "benchmaster"
	// sentinelDownAfter is the sentinels' down-after-milliseconds: how long
	// a silent master takes to be called down.
	sentinelDownAfter = time.Second
	// failoverRate is the lines a second the stream's program prints.
	failoverRate = 100
	// failoverWarmUp is how many lines each client has before the kill.
	failoverWarmUp = 100
)

// failoverMetrics are the rows, in the order failoverOnce returns them.
var failoverMetrics = []metric{
	{"sentinels name the new master (s)", false, 2},
	{"master's death to a client's first line again, median (s)", false, 2},
	{"master's death to the last client's first line again (s)", false, 2},
	{"lines lost by resuming clients", false, 0},
	{"lines repeated to resuming clients", false, 0},
}

// failoverMain runs the failover benchmark from its command line and
// returns the exit code.
func failoverMain(args []string) int {
	fs := flag.NewFlagSet("runner failover", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "repetitions; the table shows medians")
	smoke := fs.Bool("smoke", false, "few clients and 1 repetition: checks correctness, not speed")
	wsgate := fs.String("wsgate", "", "path to the wsgate binary")
	fs.String("producer", "", "unused: the stream's program is a shell loop")
	redisPath := fs.String("redis-server", "redis-server", "path to redis-server")
	sentinelPath := fs.String("redis-sentinel", "redis-sentinel", "path to redis-sentinel")
	clients := fs.Int("subscribers", 100, "clients following positions, half on each instance")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *smoke {
		*clients = 10
		if !flagSet(fs, "reps") {
			*reps = 1
		}
	}
	kind := serverKind{name: "wsgate", path: *wsgate, frameFlag: true}
	redisBin, err1 := exec.LookPath(*redisPath)
	sentinelBin, err2 := exec.LookPath(*sentinelPath)
	if err := errors.Join(checkExecutable(kind), err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, "runner failover:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cell{}
	for rep := range *reps {
		if ctx.Err() != nil {
			return 130
		}
		fmt.Fprintf(os.Stderr, "rep %d/%d  failover ", rep+1, *reps)
		start := time.Now()
		vals, err := failoverOnce(ctx, kind, redisBin, sentinelBin, *clients)
		took := time.Since(start).Round(100 * time.Millisecond)
		if err != nil {
			c.failures = append(c.failures, fmt.Sprintf("rep %d: %v", rep+1, err))
			fmt.Fprintf(os.Stderr, "FAIL (%v): %v\n", took, err)
			continue
		}
		c.values = append(c.values, vals)
		fmt.Fprintf(os.Stderr, "ok (%v)  sentinels %.2fs, first line again %.2fs median, %.2fs last; lost %.0f, repeated %.0f\n",
			took, vals[0], vals[1], vals[2], vals[3], vals[4])
	}
	writeFailoverTable(os.Stdout, *clients, *reps, c)
	if len(c.failures) > 0 {
		return 1
	}
	return 0
}

// writeFailoverTable prints the markdown table of medians.
func writeFailoverTable(w io.Writer, clients, reps int, c *cell) {
	fmt.Fprintf(w, "Redis Sentinel (a master, a replica, three sentinels, down-after-milliseconds %d) under two wsgate instances; "+
		"one stream of %d lines/s read by %d clients following positions, half on each instance; the master killed (SIGKILL); median of %d repetition(s).\n\n",
		sentinelDownAfter.Milliseconds(), failoverRate, clients, reps)
	fmt.Fprintln(w, "| metric | value |\n|---|--:|")
	for i, m := range failoverMetrics {
		fmt.Fprintf(w, "| %s%s | %s |\n", m.name, arrow(m), c.text(i, m))
	}
	for _, f := range c.failures {
		fmt.Fprintf(w, "\n- FAIL: %s", f)
	}
	fmt.Fprintln(w)
}

// failoverOnce sets everything up, kills the master under load and
// measures.
func failoverOnce(ctx context.Context, kind serverKind, redisBin, sentinelBin string, clients int) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	set, err := startSentinelSet(ctx, redisBin, sentinelBin)
	if err != nil {
		return nil, err
	}
	defer set.stop()
	command := []string{"--bus=" + set.url(), "--replay=10000", "sh", "-c",
		fmt.Sprintf(`i=0; while :; do i=$((i+1)); echo "$$ $i"; sleep %g; done`, 1.0/failoverRate)}
	var urls []string
	for range 2 {
		s, err := startServer(ctx, kind, true, command)
		if err != nil {
			return nil, err
		}
		defer s.stop()
		urls = append(urls, s.url)
	}
	runCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var cs []*follower
	var wg sync.WaitGroup
	for i := range clients {
		f := &follower{url: urls[i%2]}
		cs = append(cs, f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(runCtx)
		}()
	}
	defer wg.Wait()
	defer stopClients()
	if err := waitFollowers(ctx, cs, func(f *follower) bool { return f.lines() >= failoverWarmUp }); err != nil {
		return nil, fmt.Errorf("before the kill: %w", err)
	}
	old := set.masterAddr(ctx)
	killed := time.Now()
	for _, f := range cs {
		f.markKill(killed)
	}
	set.master.stop()
	promoted, err := set.waitFailover(ctx, old)
	if err != nil {
		return nil, err
	}
	if err := waitFollowers(ctx, cs, func(f *follower) bool { return !f.againAt().IsZero() }); err != nil {
		return nil, fmt.Errorf("after the kill: %w", err)
	}
	time.Sleep(time.Second) // lines after the first one again are checked too
	stopClients()
	wg.Wait()
	var again []time.Duration
	lost, repeated := 0, 0
	for i, f := range cs {
		if f.err != nil {
			return nil, fmt.Errorf("client %d: %w", i, f.err)
		}
		again = append(again, f.againAt().Sub(killed))
		lost += f.lost
		repeated += f.repeated
	}
	slices.Sort(again)
	return []float64{promoted.Sub(killed).Seconds(), secs(again[len(again)/2]), secs(again[len(again)-1]), float64(lost), float64(repeated)}, nil
}

// waitFollowers waits until cond holds for every client, or one failed.
func waitFollowers(ctx context.Context, cs []*follower, cond func(*follower) bool) error {
	for {
		done := true
		for i, f := range cs {
			if err := f.failed(); err != nil {
				return fmt.Errorf("client %d: %w", i, err)
			}
			done = done && cond(f)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// follower is a client that follows positions, reconnecting with its last
// one whenever its connection ends. Lines lost are positions it skipped;
// repeated, positions it got twice (both must stay 0).
type follower struct {
	url string

	mu       sync.Mutex
	last     tagPosition
	got      int
	killedAt time.Time // when the master died; zero before
	again    time.Time // its first line over a connection made after that
	lost     int
	repeated int
	err      error
}

func (f *follower) lines() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got
}

func (f *follower) againAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.again
}

func (f *follower) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *follower) markKill(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.killedAt = at
}

// run connects and reads until ctx is done.
func (f *follower) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := f.session(ctx); err != nil {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
			return
		}
	}
}

// session is one connection; an error is a broken promise.
func (f *follower) session(ctx context.Context) error {
	f.mu.Lock()
	from, afterKill := "", !f.killedAt.IsZero()
	if f.last.epoch != "" {
		from = f.last.epoch + ":" + strconv.FormatUint(f.last.seq, 10)
	}
	f.mu.Unlock()
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	c, resp, err := d.DialContext(ctx, f.url+"?last_event_id="+from, nil)
	if err != nil {
		time.Sleep(50 * time.Millisecond)
		return nil
	}
	resp.Body.Close()
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_, msg, err := c.ReadMessage()
	if err != nil {
		time.Sleep(50 * time.Millisecond) // 1013 bus unavailable: not yet
		return nil
	}
	pos, err := greeted(msg)
	if err != nil {
		return err
	}
	if from != "" && pos != f.position() {
		return fmt.Errorf("back from %s, greeted at %s:%d", from, pos.epoch, pos.seq)
	}
	f.setPosition(pos)
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return nil
		}
		_, epoch, seq, err := untag(msg)
		if err != nil {
			return err
		}
		f.take(string(epoch), seq, afterKill)
	}
}

func (f *follower) position() tagPosition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *follower) setPosition(p tagPosition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last.epoch == "" {
		f.last = p
	}
}

// take counts a line and checks it follows the last.
func (f *follower) take(epoch string, seq uint64, afterKill bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case epoch != f.last.epoch:
		f.err = fmt.Errorf("a line of epoch %s after %s: another history", epoch, f.last.epoch)
	case seq <= f.last.seq:
		f.repeated += int(f.last.seq - seq + 1)
	default:
		f.lost += int(seq - f.last.seq - 1)
		f.last.seq = seq
		f.got++
	}
	if afterKill && f.again.IsZero() {
		f.again = time.Now()
	}
}

// sentinelSet is a master, a replica and three sentinels, and clients to
// look at the replica and the sentinels.
type sentinelSet struct {
	master, replica *redisServer
	sentinels       []*redisServer
	clients         []*redis.Client // the replica's, then each sentinel's
}

// url is the bus URL naming the sentinels and the master.
func (s *sentinelSet) url() string {
	var addrs []string
	for _, sen := range s.sentinels {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(sen.port))
	}
	return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + failoverMaster + "/0"
}

func (s *sentinelSet) stop() {
	for _, c := range s.clients {
		c.Close()
	}
	for _, r := range append([]*redisServer{s.master, s.replica}, s.sentinels...) {
		if r != nil {
			r.stop()
		}
	}
}

// startSentinelSet starts the set-up and waits until the replica is in
// sync and every sentinel knows the others and the replica.
func startSentinelSet(ctx context.Context, redisBin, sentinelBin string) (*sentinelSet, error) {
	s := &sentinelSet{}
	var err error
	if s.master, err = startRedis(ctx, redisBin); err != nil {
		return nil, err
	}
	if s.replica, err = startRedis(ctx, redisBin, "--replicaof", "127.0.0.1", strconv.Itoa(s.master.port)); err != nil {
		s.stop()
		return nil, err
	}
	for range 3 {
		sen, err := startRedisWith(ctx, sentinelBin, func(port int, dir string) []string {
			conf := filepath.Join(dir, "sentinel.conf")
			text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s 5000\n",
				failoverMaster, s.master.port, failoverMaster, sentinelDownAfter.Milliseconds(), failoverMaster)
			_ = os.WriteFile(conf, []byte(text), 0o600)
			return []string{conf, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", ""}
		})
		if err != nil {
			s.stop()
			return nil, err
		}
		s.sentinels = append(s.sentinels, sen)
	}
	for _, r := range append([]*redisServer{s.replica}, s.sentinels...) {
		s.clients = append(s.clients, redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port),
			Protocol: 2, DisableIdentity: true, MaxRetries: -1}))
	}
	ready := func() bool {
		info, err := s.clients[0].Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return false
		}
		for _, c := range s.clients[1:] {
			m, err := c.Do(ctx, "SENTINEL", "MASTER", failoverMaster).StringSlice()
			if err != nil || fieldOf(m, "num-other-sentinels") != "2" || fieldOf(m, "num-slaves") != "1" {
				return false
			}
		}
		return true
	}
	for !ready() {
		select {
		case <-ctx.Done():
			s.stop()
			return nil, fmt.Errorf("the sentinels did not settle: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return s, nil
}

// masterAddr is the master's address as the first sentinel names it.
func (s *sentinelSet) masterAddr(ctx context.Context) string {
	addr, err := s.clients[1].Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", failoverMaster).StringSlice()
	if err != nil || len(addr) != 2 {
		return ""
	}
	return addr[0] + ":" + addr[1]
}

// waitFailover waits until a sentinel names another master than old, and
// returns when it did.
func (s *sentinelSet) waitFailover(ctx context.Context, old string) (time.Time, error) {
	for {
		if addr := s.masterAddr(ctx); addr != "" && addr != old {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("no failover: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fieldOf returns the value after name in a flat list of names and
// values, as SENTINEL MASTER answers.
func fieldOf(list []string, name string) string {
	for i := 0; i+1 < len(list); i += 2 {
		if list[i] == name {
			return list[i+1]
		}
	}
	return ""
}
