package auth

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testrun"
)

// script writes an executable sh script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authcmd.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func newCommand(t *testing.T, body string, timeout time.Duration) (*Command, *testrun.Buffer) {
	t.Helper()
	logs := &testrun.Buffer{}
	return NewCommand(script(t, body), timeout, slog.New(slog.NewTextHandler(logs, nil))), logs
}

func TestCommand_ExitZeroAdmitsWithWhatItSays(t *testing.T) {
	t.Parallel()
	c, logs := newCommand(t, `
echo "REMOTE_USER=$HTTP_X_NAME"
echo "AUTH_ROLE=admin"
echo "AUTH_TYPE=Forged"
echo "PATH=/evil"
echo "auth_lower=x"
echo "seen=$REQUEST_URI" >&2
echo
printf 'AUTH_LAST=no newline'`, time.Second)
	id, ref := c.Authorize(context.Background(), []string{"HTTP_X_NAME=dora", "REQUEST_URI=/x"}, Identity{})
	if ref != nil {
		t.Fatalf("refused: %v", ref)
	}
	if id.Type != TypeCommand || id.User != "dora" {
		t.Errorf("identity %+v, want Command dora", id)
	}
	if want := []string{"AUTH_ROLE=admin", "AUTH_LAST=no newline"}; !slices.Equal(id.Vars, want) {
		t.Errorf("vars %q, want %q", id.Vars, want)
	}
	out := logs.String()
	for _, want := range []string{`line="AUTH_TYPE=Forged"`, `line="PATH=/evil"`, `line="auth_lower=x"`, `line="seen=/x"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestCommand_KeepsTheMethodsTypeAndUserUnlessItNamesOne(t *testing.T) {
	t.Parallel()
	c, _ := newCommand(t, "exit 0", time.Second)
	id, ref := c.Authorize(context.Background(), nil, Identity{Type: TypeBasic, User: "alice"})
	if ref != nil || id.Type != TypeBasic || id.User != "alice" {
		t.Fatalf("got %+v %v, want Basic alice", id, ref)
	}
}

func TestCommand_ExitStatusDecides(t *testing.T) {
	t.Parallel()
	cases := map[string]int{"exit 1": 401, "exit 2": 403, "exit 77": 403, "kill -TERM $$": 403}
	for body, status := range cases {
		c, _ := newCommand(t, body, time.Second)
		_, ref := c.Authorize(context.Background(), nil, Identity{})
		if ref == nil || ref.Status != status {
			t.Errorf("%s: %+v, want %d", body, ref, status)
		}
	}
}

// A command past its timeout is killed with everything it started, and the
// request gets 503.
func TestCommand_TimeoutKillsTheGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, _ := newCommand(t, "sleep 60 & echo $! > "+pidFile+"; wait", 300*time.Millisecond)
	start := time.Now()
	_, ref := c.Authorize(context.Background(), nil, Identity{})
	if ref == nil || ref.Status != 503 || !strings.Contains(ref.Detail, "--authtimeout") {
		t.Fatalf("got %+v, want 503 naming --authtimeout", ref)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("took %v to give up after 300ms", elapsed)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("the command's child %d is still running", pid)
	}
}

func TestCommand_WithoutWsgatesEnvironment(t *testing.T) {
	t.Setenv("WSGATE_SECRET_FOR_TEST", "leak")
	c, _ := newCommand(t, `echo "REMOTE_USER=${WSGATE_SECRET_FOR_TEST:-none}"`, time.Second)
	id, _ := c.Authorize(context.Background(), []string{"PATH=/usr/bin:/bin"}, Identity{})
	if id.User != "none" {
		t.Fatalf("the command saw wsgate's own environment: %q", id.User)
	}
}

func TestCommand_ConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	c, _ := newCommand(t, "exit 0", 200*time.Millisecond)
	for range cap(c.running) {
		c.running <- struct{}{}
	}
	_, ref := c.Authorize(context.Background(), nil, Identity{})
	if ref == nil || ref.Status != 503 || !strings.Contains(ref.Detail, "already running") {
		t.Fatalf("with every slot busy: %+v, want 503", ref)
	}
}

func TestCommand_CannotStart(t *testing.T) {
	t.Parallel()
	c := NewCommand(filepath.Join(t.TempDir(), "missing"), time.Second, slog.New(slog.DiscardHandler))
	if _, ref := c.Authorize(context.Background(), nil, Identity{}); ref == nil || ref.Status != 503 {
		t.Fatalf("a missing command: %+v, want 503", ref)
	}
}
