package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startupErrorWait bounds one run of wsgate that must fail at start: a run
// that serves instead would block for good.
const startupErrorWait = 20 * time.Second

// TestStartupErrorsNameTheFlagAndTheFix runs wsgate's run, as main does,
// with each mistake an operator makes at start, and checks that it fails
// with one line that names the flag at fault and says what to do instead.
func TestStartupErrorsNameTheFlagAndTheFix(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0") // a port another program holds
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	config := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return "--config=" + path
	}
	cases := []struct {
		name string
		args []string
		code int      // exitBadUsage for what is checked before listening, exitFailure after
		want []string // in the one line on stderr
	}{
		{"port in use", []string{"--address=127.0.0.1", "--port=" + port, "cat"}, exitFailure,
			[]string{"--port=" + port + ": 127.0.0.1:" + port + ": address already in use", "choose another port with --port"}},
		{"redirect port in use", []string{"--address=127.0.0.1", "--port=0", "--redirport=" + port, "cat"}, exitFailure,
			[]string{"--redirport=" + port + ": ", "address already in use", "choose another port with --redirport"}},
		{"metrics port in use", []string{"--address=127.0.0.1", "--port=0", "--metrics=127.0.0.1:" + port, "cat"}, exitFailure,
			[]string{"--metrics=127.0.0.1:" + port + ": ", "address already in use", "choose another port with --metrics"}},
		{"address of another machine", []string{"--address=192.0.2.1", "--port=0", "cat"}, exitFailure,
			[]string{"--address=192.0.2.1: no interface of this machine has the address 192.0.2.1", "ip -brief address"}},
		{"address that does not resolve", []string{"--address=wsgate-test.invalid", "--port=0", "cat"}, exitFailure,
			[]string{"--address=wsgate-test.invalid: ", "give an IP address"}},
		{"unix socket path that is a directory", []string{"--unixsocket=" + dir, "cat"}, exitFailure,
			[]string{"--unixsocket=" + dir + ": ", "not a socket"}},

		{"same port for --port and --redirport", []string{"--address=127.0.0.1", "--port=8080", "--redirport=8080", "cat"}, exitBadUsage,
			[]string{"--redirport=8080 is the same port as --port=8080: give each its own port"}},
		{"--redirport on --port's default", []string{"--address=127.0.0.1", "--redirport=80", "cat"}, exitBadUsage,
			[]string{"--redirport=80 is the same port as --port (default 80)"}},
		{"same port for --port and --metrics", []string{"--address=127.0.0.1", "--port=8080", "--metrics=127.0.0.1:8080", "cat"}, exitBadUsage,
			[]string{"--metrics=127.0.0.1:8080 is the same port as --port=8080", "such as --metrics=127.0.0.1:9090"}},
		{"same port for --redirport and --metrics", []string{"--address=127.0.0.1", "--port=8443", "--redirport=9090", "--metrics=:9090", "cat"}, exitBadUsage,
			[]string{"--metrics=:9090 is the same port as --redirport=9090", "such as --metrics=:9091"}},
		{"same address twice", []string{"--address=::1", "--address=[::1]", "--port=8080", "cat"}, exitBadUsage,
			[]string{"--address=[::1] is given twice"}},
		{"--metrics as a port alone", []string{"--metrics=9090", "cat"}, exitBadUsage,
			[]string{"--metrics=9090: want HOST:PORT, such as --metrics=127.0.0.1:9090"}},

		{"directory as the command", []string{"examples"}, exitBadUsage,
			[]string{`command "examples" is a directory: serve it with --dir=examples`}},
		{"directory path as the command", []string{dir}, exitBadUsage,
			[]string{fmt.Sprintf("command %q is a directory: serve it with --dir=%s", dir, dir)}},
		{"file of this directory, not on PATH", []string{"main.go"}, exitBadUsage,
			[]string{`command "main.go" is not on PATH: to run the file in this directory, give ./main.go`}},
		{"file not executable", []string{"./main.go"}, exitBadUsage,
			[]string{`command "./main.go" cannot be run: permission denied: make it executable (chmod +x ./main.go)`}},

		{"bus as host:port", []string{"--broadcast", "--bus=127.0.0.1:6390", "cat"}, exitBadUsage,
			[]string{"--bus=127.0.0.1:6390: want redis://HOST:PORT/DB, such as --bus=redis://127.0.0.1:6390/0"}},
		{"bus URL with a bad port", []string{"--broadcast", "--bus=redis://127.0.0.1:port/0", "cat"}, exitBadUsage,
			[]string{"--bus=redis://127.0.0.1:port/0: ", "want redis://[:PASSWORD@]HOST:PORT/DB"}},
		{"bus URL of another scheme", []string{"--broadcast", "--bus=http://127.0.0.1:6379/0", "cat"}, exitBadUsage,
			[]string{"--bus=http://127.0.0.1:6379/0: ", "want redis://[:PASSWORD@]HOST:PORT/DB"}},
		{"header without a colon", []string{`--header-ws=X-Frame-Options DENY`, "cat"}, exitBadUsage,
			[]string{`--header-ws: header "X-Frame-Options DENY": want "Name: value"`}},
		{"bad origin", []string{"--origin=https://a.example/app", "cat"}, exitBadUsage,
			[]string{"--origin: ", `"https://a.example/app"`, "scheme://host[:port]"}},

		{"config key misspelt", []string{config("misspelt.json", `{"prot": 8080}`), "cat"}, exitBadUsage,
			[]string{"--config=" + dir + "/misspelt.json: unknown key \"prot\": did you mean \"port\"?"}},
		{"config key unlike any flag", []string{config("unlike.json", `{"colour": "blue"}`), "cat"}, exitBadUsage,
			[]string{`unknown key "colour": keys are flag names without the dashes, such as "maxforks"`}},
		{"config file in YAML", []string{config("wsgate.yaml", "port: 8080\nmaxforks: 10\n"), "cat"}, exitBadUsage,
			[]string{"wsgate.yaml is YAML, but the config file is JSON: write it as {\"port\": 8080", "line 1, column 1"}},
		{"config file in TOML, by its content", []string{config("wsgate.conf", "# wsgate\n[listen]\nport = 8080\n"), "cat"}, exitBadUsage,
			[]string{"wsgate.conf is TOML, but the config file is JSON", "line 1, column 1"}},
		{"config file with a trailing comma", []string{config("comma.json", "{\n  \"port\": 8080,\n}\n"), "cat"}, exitBadUsage,
			[]string{"comma.json is not valid JSON: line 3, column 1: ", "(JSON allows no comma before })"}},
		{"config file broken after a multibyte character", []string{config("accent.json", `{"origin": "café" "x"}`), "cat"}, exitBadUsage,
			[]string{"accent.json is not valid JSON: line 1, column 19: "}},
		{"config file that is a list", []string{config("list.json", `["port", 8080]`), "cat"}, exitBadUsage,
			[]string{"list.json: holds a JSON array: want a JSON object keyed by flag name"}},
		{"config file missing", []string{"--config=" + dir + "/missing.json", "cat"}, exitBadUsage,
			[]string{"--config=" + dir + "/missing.json: no such file or directory"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runUntilItFails(t, c.args)
			if code != c.code {
				t.Errorf("exit code %d, want %d", code, c.code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr is not one line: %q", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(unquoteLog(stderr), w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}
}

// TestBusURLErrorsNeverShowThePassword: a bus URL that holds a password is
// shown only as redisbus redacts it.
func TestBusURLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"redis://:hunter2@127.0.0.1:port/0", "hunter2@127.0.0.1:6379", "redis://:hunter2@127.0.0.1:6379/db"} {
		_, stderr, code := runUntilItFails(t, []string{"--broadcast", "--bus=" + url, "cat"})
		if code != exitBadUsage || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "--bus") ||
			!strings.Contains(stderr, "redis://[:PASSWORD@]HOST:PORT/DB") {
			t.Errorf("--bus=%s: exit %d, stderr %q; want 2 and the form of a bus URL, without the password", url, code, stderr)
		}
	}
}

// TestPrivilegedPortErrorHintsThePortFlagAndTheCapability: binding port 80
// unprivileged fails with EACCES. Tests often run as root, who may bind it,
// so the error is the one net.Listen returns, restated as wsgate does.
func TestPrivilegedPortErrorHintsThePortFlagAndTheCapability(t *testing.T) {
	t.Parallel()
	denied := func(port int) error {
		return fmt.Errorf("listen on :%d: %w", port, &net.OpError{
			Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv6unspecified, Port: port},
			Err: os.NewSyscallError("bind", syscall.EACCES),
		})
	}
	cli, err := parseCLI([]string{"--redirport=81", "cat"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{denied(80), "--port (default 80): *:80: permission denied: ports below 1024 need privilege: choose one of 1024 or above with --port, " +
			"or grant CAP_NET_BIND_SERVICE (AmbientCapabilities=CAP_NET_BIND_SERVICE in a systemd unit)"},
		{denied(81), "--redirport=81: *:81: permission denied: ports below 1024 need privilege: choose one of 1024 or above with --redirport"},
	} {
		if got := cli.listenError(c.err).Error(); !strings.HasPrefix(got, c.want) {
			t.Errorf("listenError(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if os.Geteuid() != 0 { // then the kernel says it too
		_, stderr, code := runUntilItFails(t, []string{"--address=127.0.0.1", "--port=80", "cat"})
		if code != exitFailure || !strings.Contains(unquoteLog(stderr), "--port=80: 127.0.0.1:80: permission denied") {
			t.Errorf("exit %d, stderr %q; want 1 and the hint", code, stderr)
		}
	}
}

// runUntilItFails runs wsgate's run with args and returns what it printed
// and its exit code; it fails the test if run is still serving after
// startupErrorWait.
func runUntilItFails(t *testing.T, args []string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(args, &out, &errOut) }()
	select {
	case code = <-done:
		return out.String(), errOut.String(), code
	case <-time.After(startupErrorWait):
		t.Fatalf("wsgate %q still running after %v: it started instead of failing", args, startupErrorWait)
	}
	return "", "", 0
}

// unquoteLog undoes the quoting of a text log line's values, so that a
// FATAL line reads as the message it carries.
func unquoteLog(line string) string {
	return strings.ReplaceAll(line, `\"`, `"`)
}
