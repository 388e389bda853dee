package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/process"
)

// The unit's promises, read from the file: what systemd-analyze cannot
// judge.
func TestSystemd_ServiceUnitSettings(t *testing.T) {
	t.Parallel()
	service := readExample(t, "systemd/wsgate.service")
	for _, want := range []string{
		"Type=notify", "KillMode=mixed", "EnvironmentFile=-/etc/wsgate/wsgate.env", "ExecReload=/bin/kill -HUP $MAINPID",
		"DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "WatchdogSec=",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want)).MatchString(service) {
			t.Errorf("wsgate.service has no %s line", want)
		}
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)s$`).FindStringSubmatch(service)
	if m == nil {
		t.Fatal("wsgate.service has no TimeoutStopSec=Ns line")
	}
	stop, _ := strconv.Atoi(m[1])
	if drain := process.StopBound(0) + shutdownSlack; time.Duration(stop)*time.Second < 2*drain {
		t.Errorf("TimeoutStopSec=%ds is not well above the drain bound %v", stop, drain)
	}
	if !strings.Contains(readExample(t, "systemd/wsgate-metrics.socket"), "FileDescriptorName="+metricsSocketName+"\n") {
		t.Errorf("wsgate-metrics.socket does not name its socket %q", metricsSocketName)
	}
}

// readExample reads a file of examples/.
func readExample(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("examples", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
