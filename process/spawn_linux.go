//go:build linux && !wsgate_portable

package process

import (
	"fmt"
	"syscall"
)

// spawn starts the child on the pipes' ends and watches it: the Linux
// backend, with a pidfd for its exit and an epoll set (watch_linux.go).
func spawn(spec Spec, files *pipeSet) (int, *watcher, error) {
	pid, pidfd, err := forkExec(spec, files)
	if err != nil {
		return 0, nil, err
	}
	watch, err := newWatcher(pidfd, files.stdout, files.stderr)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		reap(pid)
		return 0, nil, fmt.Errorf("watch: %w", err)
	}
	return pid, watch, nil
}

// forkExec starts the child on the pipes' ends, in its own process group,
// and returns its pid and a pidfd for it. It is os/exec without what wsgate
// does not need: no path lookup, no environment copy, no second pidfd. The
// child is forked on the fork thread and gets SIGKILL if wsgate dies
// (forkthread.go).
func forkExec(spec Spec, files *pipeSet) (pid, pidfd int, err error) {
	env := spec.Env
	if env == nil {
		env = []string{} // nil would mean "inherit"
	}
	pidfd = -1
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   env,
		Files: []uintptr{uintptr(files.childStdin), uintptr(files.childStdout), uintptr(files.childStderr)},
		Sys:   &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd, Pdeathsig: parentDeathSignal},
	}
	argv := append([]string{spec.Path}, spec.Args...)
	onForkThread(func() { pid, err = forkExecRetrying(spec.Path, argv, attr) })
	if err != nil {
		return 0, -1, err
	}
	if pidfd < 0 { // a kernel without CLONE_PIDFD
		if pidfd, err = pidfdOpen(pid); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			reap(pid)
			return 0, -1, err
		}
	}
	return pid, pidfd, nil
}
