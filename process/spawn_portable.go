//go:build unix && (!linux || wsgate_portable)

package process

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// spawn starts the child on the pipes' ends, in its own process group, and
// watches it: the portable backend, for macOS and FreeBSD, and for Linux
// under the wsgate_portable build tag. It uses what every unix has: a plain
// fork and exec, SIGCHLD for the exit (exits), and the runtime's poller for
// the output (watch_portable.go). Without a parent-death signal, a child
// of a wsgate that was killed (SIGKILL, a crash) runs on until it next
// writes to the output nobody reads (SIGPIPE) or its service manager stops
// it.
func spawn(spec Spec, files *pipeSet) (int, *watcher, error) {
	env := spec.Env
	if env == nil {
		env = []string{} // nil would mean "inherit"
	}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   env,
		Files: []uintptr{uintptr(files.childStdin), uintptr(files.childStdout), uintptr(files.childStderr)},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	argv := append([]string{spec.Path}, spec.Args...)
	pid, err := forkExecRetrying(spec.Path, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	w := newWatcher(files.stdout, files.stderr)
	exits.watch(pid, w.leaderExited)
	return pid, w, nil
}

// exits reaps the portable backend's children as they exit.
var exits exitWatch

// exitWatch is one goroutine for the program's life (started by the first
// watch, like the fork thread of the Linux backend), which on every SIGCHLD
// asks each child still running, without waiting, whether it has exited.
// That costs a system call per running child and SIGCHLD, where a pidfd
// costs none; a goroutine blocked in wait4 for each child (os/exec's way)
// would hold an OS thread per child instead, and the runtime allows 10,000.
type exitWatch struct {
	once    sync.Once
	mu      sync.Mutex
	running map[int]func(syscall.WaitStatus) // pid: what to tell once it has exited
	look    chan os.Signal                   // SIGCHLD, or a new child to look at
}

// watch calls exited, from the watch's goroutine, with pid's status once
// it has exited and been reaped.
func (e *exitWatch) watch(pid int, exited func(syscall.WaitStatus)) {
	e.once.Do(func() {
		e.running = make(map[int]func(syscall.WaitStatus))
		e.look = make(chan os.Signal, 1)
		signal.Notify(e.look, syscall.SIGCHLD)
		go e.reapAsTheyExit()
	})
	e.mu.Lock()
	e.running[pid] = exited
	e.mu.Unlock()
	select { // it may have exited before it was in the table
	case e.look <- syscall.SIGCHLD:
	default:
	}
}

// reapAsTheyExit is the watch's goroutine.
func (e *exitWatch) reapAsTheyExit() {
	for range e.look {
		e.mu.Lock()
		var gone []func()
		for pid, exited := range e.running {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if got == pid || (err != nil && err != syscall.EINTR) {
				delete(e.running, pid)
				gone = append(gone, func() { exited(ws) })
			}
		}
		e.mu.Unlock()
		for _, tell := range gone {
			tell()
		}
	}
}
