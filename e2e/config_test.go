package e2e

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// With TestCLI_CommandLineWinsOverEnvironment and
// TestCLI_CommandLineWinsOverConfigFile, each pair of the three sources:
// the command line, then WSGATE_ variables, then the --config file.
func TestConfig_EnvironmentWinsOverTheConfigFile(t *testing.T) {
	t.Parallel()
	g := startGatewayEnv(t, []string{"WSGATE_MAXFORKS=2"}, "--config", writeConfig(t, `{"maxforks": 1}`), "cat")
	expectForkLimit(t, g, 2)
}

func TestConfig_VariableNamingNoFlagIsWarnedAbout(t *testing.T) {
	t.Parallel()
	g := startGatewayEnv(t, []string{"WSGATE_PROT=8080"}, "cat")
	f := g.waitLog(5*time.Second, "WSGATE_PROT names no flag and is ignored; did you mean WSGATE_PORT?", nil)
	if f["level"] != "WARN" {
		t.Errorf("warning logged at %s, want WARN", f["level"])
	}
}

func TestConfig_VersionHelpAndLicenseVariablesNeverMakeAServicePrintAndExit(t *testing.T) {
	t.Parallel()
	env := []string{"WSGATE_VERSION=1", "WSGATE_HELP=true", "WSGATE_LICENSE=1"}
	g := startGatewayEnv(t, env, "cat") // fails unless it serves
	for _, flag := range []string{"VERSION", "HELP", "LICENSE"} {
		g.waitLog(5*time.Second, "WSGATE_"+flag+" is ignored: --"+strings.ToLower(flag)+" belongs on the command line only", nil)
	}
	conn := dial(t, g.url("/"))
	send(t, conn, "still serving")
	if got := receive(t, conn); got != "still serving" {
		t.Errorf("echo %q", got)
	}
}

func TestConfig_BadValueInTheFileNamesTheKeyAndTheFile(t *testing.T) {
	t.Parallel()
	config := writeConfig(t, `{"pingms": 500, "maxforks": "many"}`)
	expectUsageError(t, []string{"--config=" + config, "cat"}, config, `"maxforks"`, "many")
	config = writeConfig(t, `{"version": true}`)
	expectUsageError(t, []string{"--config=" + config, "cat"}, config, `"version"`, "command line only")
	config = writeConfig(t, `{"maxforks": 1,}`)
	expectUsageError(t, []string{"--config=" + config, "cat"}, config)
}

func TestCLI_VersionPrintsVersionCommitAndGoVersion(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runCLI(t, nil, "--version")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	want := regexp.MustCompile(`^wsgate ` + regexp.QuoteMeta(mainVersion(t)) + ` \(commit \S+, ` + regexp.QuoteMeta(runtime.Version()) + ` \S+/\S+\)\n$`)
	if !want.MatchString(stdout) {
		t.Fatalf("--version printed %q, want %s", stdout, want)
	}
}
