package e2e

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// expectUsageError runs wsgate with args and checks that it exits 2, prints
// nothing on stdout and exactly one line on stderr, holding each of want.
func expectUsageError(t *testing.T, args []string, want ...string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, nil, args...)
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Fatalf("stderr is not exactly one line: %q", stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not mention %q", stderr, w)
		}
	}
}

func TestCLI_MisspeltFlagIsAnError(t *testing.T) {
	t.Parallel()
	expectUsageError(t, []string{"--prot=80", "cat"}, "--prot")
}

func TestCLI_MissingCommandIsAnError(t *testing.T) {
	t.Parallel()
	expectUsageError(t, []string{"--port=0"}, "no command")
}

func TestCLI_CommandNotOnPathIsAnError(t *testing.T) {
	t.Parallel()
	expectUsageError(t, []string{"wsgate-e2e-no-such-command", "arg"}, `"wsgate-e2e-no-such-command"`, "not found")
}

func TestCLI_NonExecutableCommandIsAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "not-executable.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectUsageError(t, []string{path}, path)
}

func TestCLI_NonNumericPortIsAnError(t *testing.T) {
	t.Parallel()
	expectUsageError(t, []string{"--port=abc", "cat"}, "--port", `"abc"`)
}

func TestCLI_PortOutOfRangeIsAnError(t *testing.T) {
	t.Parallel()
	expectUsageError(t, []string{"--port=70000", "cat"}, "--port", "70000")
}

func TestCLI_UnknownLogLevelIsAnError(t *testing.T) {
	t.Parallel()
	expectUsageError(t, []string{"--loglevel=loud", "cat"}, "--loglevel", `"loud"`)
}

func TestCLI_HelpListsEveryFlagAndExits0(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runCLI(t, nil, "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	for _, flag := range []string{
		"--port=", "--address=", "--maxforks=", "--maxframesize=", "--closems=", "--pingms=",
		"--binary", "--passenv=", "--loglevel=", "--logformat=", "--config=", "--version", "--license", "--help",
		"--linebuffer", "--subprotocol=", "--compress",
	} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("--help does not list %s", flag)
		}
	}
	// Its placeholder A,B takes the place where kong would show it.
	if !strings.Contains(stdout, "Default: PATH,LD_LIBRARY_PATH") {
		t.Error("--help does not show --passenv's default")
	}
}

func TestCLI_LicensePrintsTheMITLicense(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runCLI(t, nil, "--license")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	license, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, "MIT License\n") || stdout != string(license) {
		t.Fatalf("--license printed %q, want the MIT text of LICENSE", stdout)
	}
}

// expectOneMessageThenExit0 dials path on g and checks that the child sends
// exactly want and then exits 0.
func expectOneMessageThenExit0(t *testing.T, g *gatewayProc, want string) {
	t.Helper()
	conn := dial(t, g.url("/"))
	msgs := expectClose(t, conn, websocket.CloseNormalClosure, "exit status 0")
	if len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("messages %q, want [%q]", msgs, want)
	}
}

func TestCLI_CommandFlagsPassThroughUntouched(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "printf", `%s|%s\n`, "--port=1", "-x")
	expectOneMessageThenExit0(t, g, "--port=1|-x")
}

func TestCLI_LeadingDoubleDashIsDropped(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--", "printf", `%s|%s\n`, "--port=1", "-x")
	expectOneMessageThenExit0(t, g, "--port=1|-x")
}

// expectForkLimit checks that g, serving cat, runs limit children at once:
// limit connections echo, the next one is closed with 1013, and the first
// ones still echo afterwards.
func expectForkLimit(t *testing.T, g *gatewayProc, limit int) {
	t.Helper()
	var conns []*websocket.Conn
	for i := 0; i < limit; i++ {
		conn := dial(t, g.url("/"))
		send(t, conn, "first")
		if got := receive(t, conn); got != "first" {
			t.Fatalf("connection %d echoed %q, want %q", i+1, got, "first")
		}
		conns = append(conns, conn)
	}
	over := dial(t, g.url("/"))
	if msgs := expectClose(t, over, websocket.CloseTryAgainLater, "too many connections"); len(msgs) != 0 {
		t.Fatalf("refused connection got messages %q", msgs)
	}
	for i, conn := range conns {
		send(t, conn, "again")
		if got := receive(t, conn); got != "again" {
			t.Fatalf("connection %d echoed %q after the refusal, want %q", i+1, got, "again")
		}
	}
}

func TestCLI_EnvironmentMaxForksLimitsConnections(t *testing.T) {
	t.Parallel()
	g := startGatewayEnv(t, []string{"WSGATE_MAXFORKS=1"}, "cat")
	expectForkLimit(t, g, 1)
}

func TestCLI_CommandLineWinsOverEnvironment(t *testing.T) {
	t.Parallel()
	g := startGatewayEnv(t, []string{"WSGATE_MAXFORKS=1"}, "--maxforks=2", "cat")
	expectForkLimit(t, g, 2)
}

// writeConfig writes a JSON config file and returns its path.
func writeConfig(t *testing.T, json string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wsgate.json")
	if err := os.WriteFile(path, []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLI_ConfigFileMaxForksLimitsConnections(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--config", writeConfig(t, `{"maxforks": 1}`), "cat")
	expectForkLimit(t, g, 1)
}

func TestCLI_CommandLineWinsOverConfigFile(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "--config", writeConfig(t, `{"maxforks": 1}`), "--maxforks=2", "cat")
	expectForkLimit(t, g, 2)
}

func TestCLI_EnvironmentPingMSSetsPingInterval(t *testing.T) {
	t.Parallel()
	g := startGatewayEnv(t, []string{"WSGATE_PINGMS=200"}, "cat")
	conn := dial(t, g.url("/"))
	pings := countPings(conn)
	// Reading for 2 s lets the client see and answer the pings; the default
	// interval of 30 s would give none. A loaded machine may delay some.
	if _, _, err := readUntilClose(conn, 2*time.Second); !isTimeout(err) {
		t.Fatalf("reading ended with %v, want a read timeout", err)
	}
	if n := pings.Load(); n < 3 || n > 11 {
		t.Fatalf("%d pings in 2 s, want about 10 (every 200 ms)", n)
	}
}

// countPings makes conn count the pings it reads, answering each with a pong.
func countPings(conn *websocket.Conn) *atomic.Int64 {
	var n atomic.Int64
	conn.SetPingHandler(func(data string) error {
		n.Add(1)
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	return &n
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestCLI_DirectoryFlagNamingAFileIsAnErrorNamingTheFlag(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	expectUsageError(t, []string{"--dir=" + file}, "--dir: ", file, "not a directory")
	expectUsageError(t, []string{"--cgidir=" + file, "cat"}, "--cgidir: ", file, "not a directory")
	expectUsageError(t, []string{"--staticdir=" + file, "cat"}, "--staticdir: ", file, "not a directory")
}
