package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports, and reading it properly needs
// sysconf (cgo), so it is a constant here.
const clockTicks = 100

// cpuTime returns the user plus system CPU time the process has used so far,
// summed over its threads but excluding its children (those are cutime and
// cstime, which the benchmark deliberately leaves out).
func cpuTime(pid int) (time.Duration, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	// fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parentPid returns the parent of pid, from /proc/PID/stat.
func parentPid(pid int) (int, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return strconv.Atoi(string(fields[1]))
}

// statFields returns the fields of /proc/PID/stat that follow the command
// name. The name is skipped by its last ')' because it may hold spaces.
func statFields(pid int) ([][]byte, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return bytes.Fields(data[i+1:]), nil
}

// statusKiB returns a "kB" field of /proc/PID/status, such as VmRSS (resident
// now) or VmHWM (peak resident). Both count the process alone, not its children.
func statusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	prefix := []byte(field + ":")
	for _, line := range bytes.Split(data, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, prefix); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// descendants returns every process below pid (children, grandchildren, ...),
// zombies included, since an unreaped child is exactly what the benchmark
// wants to catch. It scans /proc once.
func descendants(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process directory
		}
		ppid, err := parentPid(p)
		if err != nil {
			continue // exited while we were scanning
		}
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		kids := children[queue[0]]
		queue = append(queue[1:], kids...)
		out = append(out, kids...)
	}
	return out, nil
}

// countDescendants is descendants reduced to a count; a /proc read error
// counts as -1 so that it can never pass for "none left".
func countDescendants(pid int) int {
	d, err := descendants(pid)
	if err != nil {
		return -1
	}
	return len(d)
}
