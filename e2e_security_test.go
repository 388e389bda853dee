package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A request path holding a control character once decoded gets 400 before
// any upgrade, in command mode and in --dir mode: it could otherwise put a
// newline into PATH_INFO, or a NUL that makes the command fail to start.
func TestSecurity_PathWithControlCharactersGets400(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "echo.sh"), []byte("#!/bin/sh\necho \"$PATH_INFO\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	modes := map[string][]string{"command": {"cat"}, "dir": {"--dir=" + dir}}
	paths := []string{"/echo.sh/x%00y", "/echo.sh/a%0ab", "/echo.sh/a%0db", "/echo.sh/%1b[31m", "/echo.sh/del%7f", "/echo.sh/tab%09"}
	for mode, args := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, args...)
			for _, path := range paths {
				if _, _, status := rawUpgrade(t, g.addr, upgradeRequest(path, g.addr)); status != http.StatusBadRequest {
					t.Errorf("%s mode, handshake for %s: status %d, want 400", mode, path, status)
				}
			}
			if _, _, status := rawUpgrade(t, g.addr, upgradeRequest("/echo.sh/fine%20path", g.addr)); status != http.StatusSwitchingProtocols {
				t.Errorf("%s mode, handshake for a path without control characters: status %d, want 101", mode, status)
			}
			time.Sleep(200 * time.Millisecond)
			if logs := g.logs(); strings.Contains(logs, "command failed to start") || len(logLines(logs, "session ended")) > 1 {
				t.Errorf("%s mode: a path with control characters reached a session:\n%s", mode, logs)
			}
		})
	}
}
