package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

const (
	// rssSampleEvery is the pause between VmRSS readings while connections are held.
	rssSampleEvery = 500 * time.Millisecond
	// idleChildrenWait is how long after the clients close the idle scenario
	// counts leftover children; the issue fixes it at 2 s.
	idleChildrenWait = 2 * time.Second
	// reapPoll is the pause between scans of /proc while waiting for children
	// to go; a scan of 10,000 processes costs a few ms, so not much faster.
	reapPoll = 100 * time.Millisecond
	// fdsPerConn is what one connection may cost the server in file
	// descriptors. Measured under load: websocketd and floor 4 (socket and
	// three pipe ends, or two and a pidfd), wsgate 6; one more for headroom.
	// The client, a separate process, needs only the socket.
	fdsPerConn = 7
	// fileReserve is the file descriptors a process needs besides connections.
	fileReserve = 1024
)

// runIdle holds idleConns connections to cat open and measures what they
// cost the gateway in resident memory, then checks that closing them leaves
// no child behind after 2 s.
func runIdle(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	before, err := statusKiB(s.pid(), "VmRSS")
	if err != nil {
		return nil, err
	}
	conns, err := openEchoConns(ctx, s.url, sz.idleConns, sz.dialWorkers)
	if err != nil {
		return nil, err
	}
	peak, err := holdSampling(ctx, s.pid(), sz.idleHold)
	closeAll(conns, sz.dialWorkers)
	if err != nil {
		return nil, err
	}
	time.Sleep(idleChildrenWait)
	if left := countDescendants(s.pid()); left != 0 {
		return nil, fmt.Errorf("%d children still running %v after %d clients closed", left, idleChildrenWait, sz.idleConns)
	}
	return []float64{
		float64(before) / 1024,
		float64(peak-before) / float64(sz.idleConns),
		0,
	}, nil
}

// runScale opens scaleConns connections, each with its own child, holds
// them, checks every one still echoes, closes them all and times until every
// child has been reaped.
func runScale(ctx context.Context, s *server, sz sizes) ([]float64, error) {
	if err := checkFileLimit(sz.scaleConns); err != nil {
		return nil, err
	}
	before, err := statusKiB(s.pid(), "VmRSS")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	conns, err := openEchoConns(ctx, s.url, sz.scaleConns, sz.dialWorkers)
	if err != nil {
		return nil, err
	}
	opened := time.Since(start)
	peak, err := checkChildrenAndHold(ctx, s.pid(), sz)
	if err == nil {
		err = echoAll(ctx, conns, sz.dialWorkers, 1)
	}
	closeAll(conns, sz.dialWorkers)
	closed := time.Now()
	if err != nil {
		return nil, err
	}
	if left, _ := waitReaped(ctx, s.pid()); left != 0 {
		return nil, fmt.Errorf("%d children still running %v after %d clients closed", left, reapTimeout, sz.scaleConns)
	}
	return []float64{
		secs(opened),
		float64(peak) / 1024,
		float64(peak-before) / float64(sz.scaleConns),
		secs(time.Since(closed)),
	}, nil
}

// checkChildrenAndHold checks that every connection got a child of its own,
// then holds them for scaleHold while sampling the gateway's RSS.
func checkChildrenAndHold(ctx context.Context, pid int, sz sizes) (int64, error) {
	if n := countDescendants(pid); n < sz.scaleConns {
		return 0, fmt.Errorf("%d children for %d connections, want one each", n, sz.scaleConns)
	}
	return holdSampling(ctx, pid, sz.scaleHold)
}

// holdSampling waits for hold, reading the gateway's VmRSS now and every
// rssSampleEvery, and returns the highest reading in KiB.
func holdSampling(ctx context.Context, pid int, hold time.Duration) (int64, error) {
	var peak int64
	end := time.Now().Add(hold)
	for {
		rss, err := statusKiB(pid, "VmRSS")
		if err != nil {
			return 0, fmt.Errorf("read gateway RSS: %w", err)
		}
		peak = max(peak, rss)
		left := time.Until(end)
		if left <= 0 {
			return peak, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(min(left, rssSampleEvery)):
		}
	}
}

// waitReaped polls until pid has no descendants or reapTimeout passes, and
// returns how many are left (-1 if /proc could not be read) and the time taken.
func waitReaped(ctx context.Context, pid int) (int, time.Duration) {
	start := time.Now()
	for {
		left := countDescendants(pid)
		if left == 0 || time.Since(start) > reapTimeout || ctx.Err() != nil {
			return left, time.Since(start)
		}
		time.Sleep(reapPoll)
	}
}

// checkFileLimit fails with advice when RLIMIT_NOFILE, which the servers
// inherit from the runner, cannot hold n connections on both sides.
func checkFileLimit(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if need := uint64(fdsPerConn*n + fileReserve); uint64(lim.Cur) < need {
		return fmt.Errorf("open-file limit %d is below the %d that %d connections need: run as root or raise `ulimit -n`", lim.Cur, need, n)
	}
	return nil
}

// raiseFileLimit lifts RLIMIT_NOFILE to want (both soft and hard, which needs
// root to pass the hard limit). Calling setrlimit explicitly also stops Go
// from restoring the old soft limit in the servers it starts.
func raiseFileLimit(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if uint64(lim.Cur) >= want {
		return nil
	}
	raised := syscall.Rlimit{Cur: limitOf(lim.Cur, want), Max: limitOf(lim.Max, max(uint64(lim.Max), want))}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
		return nil
	}
	// Not root: the soft limit can still go up to the hard one.
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// limitOf is n in the type of an Rlimit field like like: uint64 on Linux
// and macOS, int64 on FreeBSD.
func limitOf[T int64 | uint64](like T, n uint64) T { return T(n) }
