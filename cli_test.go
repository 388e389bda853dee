package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWebsocketdStyleFlagsAreAccepted(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"-port=8080 cat", "--port=8080 cat"},
		{"-port 8080 -address 127.0.0.1 cat -n", "--port 8080 --address 127.0.0.1 cat -n"},
		{"--binary=true --devconsole=false cat", "--binary cat"},
		{"--sameorigin=1 ./x.sh -port=1", "--sameorigin ./x.sh -port=1"},
		{"-h", "-h"},
		{"--port=1 -- printf -x", "--port=1 -- printf -x"},
		{"--dir=/srv/ws", "--dir=/srv/ws"},
	}
	for _, c := range cases {
		if got := strings.Join(websocketdArgs(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("websocketdArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseCLIKeepsTheCommandsOwnFlags(t *testing.T) {
	t.Parallel()
	cli, err := parseCLI([]string{"-port=9000", "--", "tail", "-n", "5", "--port=1", "-f", "x.log"})
	if err != nil {
		t.Fatal(err)
	}
	if cli.mainPort() != 9000 || strings.Join(cli.Command, " ") != "tail -n 5 --port=1 -f x.log" {
		t.Errorf("port %d, command %q", cli.mainPort(), cli.Command)
	}
}

func TestBadFlagCombinationsAreErrors(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"--ssl needs --sslcert":        {"--ssl", "cat"},
		"need --ssl":                   {"--sslcert=a.pem", "--sslkey=b.pem", "cat"},
		"both --dir and a command":     {"--dir=/tmp", "cat"},
		"no command given":             {"--port=1"},
		"--redirport=70000":            {"--redirport=70000", "cat"},
		"--pingms=-1 is negative":      {"--pingms=-1", "cat"},
		"header \"NoColon\"":           {"--header=NoColon", "cat"},
		"--maxframesize=0 must be pos": {"--maxframesize=0", "cat"},
	}
	for want, args := range cases {
		cli, err := parseCLI(args)
		if err == nil {
			err = cli.validate()
		}
		if err == nil {
			_, err = cli.gatewayConfig()
		}
		if err == nil || !strings.Contains(err.Error(), strings.Fields(want)[0]) {
			t.Errorf("%v: err = %v, want one about %q", args, err, want)
		}
	}
}

func TestSSLDefaultsToPort443UnlessPortIsGiven(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ssl", "--sslcert=x", "--sslkey=y", "cat"}, ":443"},
		{[]string{"--ssl", "--sslcert=x", "--sslkey=y", "--port=8443", "cat"}, ":8443"},
		{[]string{"cat"}, ":80"},
	} {
		cli, err := parseCLI(c.args)
		if err != nil {
			t.Fatal(err)
		}
		if got := cli.tcpAddrs(cli.mainPort())[0]; got != c.want {
			t.Errorf("%v: listens on %s, want %s", c.args, got, c.want)
		}
	}
}

func TestConfigFileKeyThatIsNoFlagIsAnError(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/wsgate.json"
	if err := os.WriteFile(path, []byte(`{"maxfork": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := parseCLI([]string{"--config=" + path, "cat"})
	if err == nil || !strings.Contains(err.Error(), `"maxfork"`) {
		t.Errorf("err = %v, want one naming the key", err)
	}
	if err := os.WriteFile(path, []byte(`{"maxforks": 3, "header_ws": ["X: y"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cli, err := parseCLI([]string{"--config=" + path, "cat"})
	if err != nil || cli.MaxForks != 3 || len(cli.HeaderWS) != 1 {
		t.Errorf("valid config: %v, maxforks %v", err, cli)
	}
}

func TestAddressesAreEachJoinedWithThePort(t *testing.T) {
	t.Parallel()
	cli, err := parseCLI([]string{"--port=8080", "--address=127.0.0.1", "--address=[::1]", "--address=::1", "cat"})
	if err != nil {
		t.Fatal(err)
	}
	ls := cli.listeners(nil)
	if got := strings.Join(ls.Addrs, " "); got != "127.0.0.1:8080 [::1]:8080 [::1]:8080" {
		t.Errorf("addresses %q", got)
	}
	cli, _ = parseCLI([]string{"--unixsocket=/tmp/x.sock", "cat"})
	if ls := cli.listeners(nil); len(ls.Addrs) != 0 || ls.UnixSocket != "/tmp/x.sock" {
		t.Errorf("--unixsocket alone: TCP %v, socket %q; want the socket only", ls.Addrs, ls.UnixSocket)
	}
	cli, _ = parseCLI([]string{"--unixsocket=/tmp/x.sock", "--port=9000", "cat"})
	if ls := cli.listeners(nil); len(ls.Addrs) != 1 || ls.Addrs[0] != ":9000" {
		t.Errorf("--unixsocket with --port: TCP %v, want :9000 too", ls.Addrs)
	}
}

func TestLoopbackOnlyWhenEveryListenerIsOnLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"cat"}, false}, // every interface
		{[]string{"--address=127.0.0.1", "cat"}, true},
		{[]string{"--address=127.0.0.2", "--address=[::1]", "--address=localhost", "cat"}, true},
		{[]string{"--address=127.0.0.1", "--address=0.0.0.0", "cat"}, false},
		{[]string{"--address=::", "cat"}, false},
		{[]string{"--address=192.0.2.1", "cat"}, false},
		{[]string{"--address=myhost.example", "cat"}, false},
		{[]string{"--address=127.0.0.1", "--unixsocket=/tmp/x.sock", "cat"}, false},
		{[]string{"--unixsocket=/tmp/x.sock", "cat"}, false},
	}
	for _, c := range cases {
		cli, err := parseCLI(c.args)
		if err != nil {
			t.Fatal(err)
		}
		ls := cli.listeners(nil)
		if got := loopbackOnly(ls); got != c.want {
			t.Errorf("%q: loopback only %v, want %v", c.args, got, c.want)
		}
	}
}

// The three sources of a flag's value, pair by pair, as parseCLI sees them:
// the command line, then WSGATE_ variables, then the --config file.
func TestFlagSourcesPrecedence(t *testing.T) { // not parallel: t.Setenv
	config := t.TempDir() + "/wsgate.json"
	if err := os.WriteFile(config, []byte(`{"maxforks": 3, "pingms": 300, "closems": 30}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WSGATE_MAXFORKS", "2")
	t.Setenv("WSGATE_PINGMS", "200")
	cli, err := parseCLI([]string{"--config=" + config, "--maxforks=1", "cat"})
	if err != nil {
		t.Fatal(err)
	}
	if cli.MaxForks != 1 {
		t.Errorf("command line 1, environment 2, file 3: maxforks %d, want 1", cli.MaxForks)
	}
	if cli.PingMS != 200 {
		t.Errorf("environment 200, file 300: pingms %d, want 200", cli.PingMS)
	}
	if cli.CloseMS != 30 {
		t.Errorf("file 30 alone: closems %d, want 30", cli.CloseMS)
	}
	cli, err = parseCLI([]string{"--config=" + config, "--closems=10", "cat"})
	if err != nil || cli.CloseMS != 10 {
		t.Errorf("command line 10, file 30: closems %d (%v), want 10", cli.CloseMS, err)
	}
}

func TestEnvarWarningsNameTheVariableAndWhatWasMeant(t *testing.T) {
	t.Parallel()
	known := knownEnvars()
	if !known["WSGATE_PORT"] || !known["WSGATE_HEADER_WS"] || known["WSGATE_VERSION"] {
		t.Fatalf("known variables wrong: %v", known)
	}
	got := envarWarnings([]string{
		"WSGATE_PORT=80", "WSGATE_PROT=80", "WSGATE_MAXFORK=1", "WSGATE_LICENSE=1", "WSGATE_ZZZZZZZZ=1", "PATH=/bin", "XWSGATE_PORT=1",
	}, known)
	want := []string{
		"WSGATE_PROT names no flag and is ignored; did you mean WSGATE_PORT?",
		"WSGATE_MAXFORK names no flag and is ignored; did you mean WSGATE_MAXFORKS?",
		"WSGATE_LICENSE is ignored: --license belongs on the command line only",
		"WSGATE_ZZZZZZZZ names no flag and is ignored",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTrustedProxiesAreAddressesOrCIDRs(t *testing.T) {
	t.Parallel()
	got, err := parseTrustedProxies([]string{"10.0.0.0/8", "127.0.0.1", "::1", "[fd00::1]", "192.168.1.7/24"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if strings.Join(s, " ") != "10.0.0.0/8 127.0.0.1/32 ::1/128 fd00::1/128 192.168.1.0/24" {
		t.Errorf("parsed %v", s)
	}
	if _, err := parseTrustedProxies([]string{"nginx.local"}); err == nil || !strings.Contains(err.Error(), "--trustedproxy=nginx.local") {
		t.Errorf("err = %v, want one naming the flag and value", err)
	}
}

// TestHelpShowsDefaultsAndExamplesThatWork: --help shows the default of
// every flag that has one, ends with examples that are valid command lines,
// and every flag it lists is one the README explains.
func TestHelpShowsDefaultsAndExamplesThatWork(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	if code := run([]string{"--help"}, &stdout, &stderr); code != exitOK || stderr.Len() > 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, stderr.String())
	}
	help := stdout.String()
	for _, want := range []string{"--replay=0 ", "--queue=1024 ", "--lingerms=0 ", "--maxforks=1024 ", "Default: PATH,LD_LIBRARY_PATH"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not show %q", want)
		}
	}
	_, examples, _ := strings.Cut(help, "\nExamples:\n")
	var commands int
	for _, line := range strings.Split(examples, "\n") {
		args, ok := strings.CutPrefix(line, "  wsgate ")
		if !ok {
			continue
		}
		commands++
		cli, err := parseCLI(strings.Fields(args))
		if err == nil {
			err = cli.validate()
		}
		if err != nil {
			t.Errorf("the example %q is not a valid command line: %v", line, err)
		}
	}
	if commands < 2 {
		t.Errorf("--help shows %d examples, want 2:\n%s", commands, examples)
	}

	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`--[a-z][a-z-]*[a-z]`).FindAllString(help, -1)
	for _, flag := range flags {
		mentioned := regexp.MustCompile(regexp.QuoteMeta(flag) + `([^a-z-]|$)`)
		if !mentioned.Match(readme) {
			t.Errorf("--help lists %s, which README.md never mentions", flag)
		}
	}
	if len(flags) < 40 {
		t.Errorf("found %d flags in --help; the pattern misses some", len(flags))
	}
}
