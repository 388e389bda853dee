package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"testing"
	"time"
)

// python is Debian's interpreter, which has python3-websockets.
const python = "/usr/bin/python3"

// pythonResult is what testdata/ws_client.py prints.
type pythonResult struct {
	Received    []string `json:"received"`
	CloseCode   int      `json:"close_code"`
	CloseReason string   `json:"close_reason"`
}

// requirePythonWebsockets skips the test unless python3 can import
// websockets; under CI=true it fails instead.
func requirePythonWebsockets(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import websockets").CombinedOutput()
	if err == nil {
		return
	}
	msg := "needs " + python + " with the websockets module (apt-get install python3-websockets): " + err.Error() + " " + string(out)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// runPythonClient runs testdata/ws_client.py against url (at most 10 s).
func runPythonClient(t *testing.T, url string, messages ...string) pythonResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"testdata/ws_client.py", url}, messages...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python client: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var r pythonResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("python client printed %q: %v", stdout.String(), err)
	}
	return r
}

func TestPythonClient_EchoesLinesAndSeesCloseAfterClosing(t *testing.T) {
	t.Parallel()
	requirePythonWebsockets(t)
	g := startGateway(t, "cat")
	got := runPythonClient(t, g.url("/"), "one", "two words", "three")
	want := pythonResult{Received: []string{"one", "two words", "three"}, CloseCode: 1000, CloseReason: ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("python client saw %+v, want %+v", got, want)
	}
}

func TestPythonClient_SeesExitStatusOfAFailingChild(t *testing.T) {
	t.Parallel()
	requirePythonWebsockets(t)
	g := startGateway(t, writeScript(t, `echo before-exit; exit 3`))
	got := runPythonClient(t, g.url("/"))
	want := pythonResult{Received: []string{"before-exit"}, CloseCode: 1011, CloseReason: "exit status 3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("python client saw %+v, want %+v", got, want)
	}
}
