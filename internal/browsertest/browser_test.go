// Package browsertest drives wsgate's developer console in a real headless
// Chromium: it builds wsgate, runs it on a free loopback port with
// --devconsole, and checks what a person using the console sees. It does
// the same for the broadcast examples' pages (examples_test.go).
//
// Chromium comes from Debian (apt-get install chromium). Without it the
// tests skip, except under CI=true, where they fail. Set
// WSGATE_UPDATE_SCREENSHOT=1 to refresh docs/devconsole.png and
// docs/devconsole-charts.png, and the examples' docs/dashboard.png and
// docs/chat.png.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cdp"
	"github.com/wsgate/wsgate/internal/testrun"
)

const (
	// testTimeout bounds each test, browser start and gateway start included.
	testTimeout = 60 * time.Second
	// stopWait is how long a gateway gets to exit after SIGTERM before it is
	// killed; wsgate promises about 2 s.
	stopWait = 10 * time.Second
	// viewportWidth and viewportHeight size the page like a laptop browser
	// window, which is also the size of the README screenshot.
	viewportWidth  = 1100
	viewportHeight = 700
	// screenshotPath is where WSGATE_UPDATE_SCREENSHOT=1 writes the picture.
	screenshotPath = "../../docs/devconsole.png"
)

// wsgateBin is the wsgate binary TestMain builds for every test.
var wsgateBin string

func TestMain(m *testing.M) {
	testrun.Main(m, &wsgateBin)
}

// TestConsoleShowsMessagesAsText is the everyday use of the console: it
// connects to its own URL, sends what it is typed, and shows the echo as
// text, never as HTML.
func TestConsoleShowsMessagesAsText(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	addr := startGateway(t, "cat")
	p := openConsole(t, ctx, "http://"+addr+"/", "dark")

	var url string
	evaluate(t, ctx, p, "document.querySelector('#url').value", &url)
	if want := "ws://" + addr + "/"; url != want {
		t.Errorf("URL field = %q, want %q (the page's own location)", url, want)
	}
	var fetched []string
	evaluate(t, ctx, p, "performance.getEntriesByType('resource').map(e => e.name)", &fetched)
	if len(fetched) > 0 {
		t.Errorf("the console loaded other resources; it must be self-contained: %q", fetched)
	}
	expectDisabled(t, ctx, p, map[string]bool{"#connect": false, "#disconnect": true, "#message": true, "#send": true})

	click(t, ctx, p, "#connect")
	waitFor(t, ctx, p, "the open status",
		`document.querySelector('#status').dataset.state === 'open' && document.querySelector('#log .line.system.open')`)
	expectDisabled(t, ctx, p, map[string]bool{"#connect": true, "#disconnect": false, "#message": false, "#send": false})

	const html = "hello <b>world</b>"
	typeAndSend(t, ctx, p, html)
	waitFor(t, ctx, p, "the echo shown as text", hasLine("received", html))
	if !truthy(t, ctx, p, hasLine("sent", html)) {
		t.Error("no sent line with the exact text typed")
	}
	if truthy(t, ctx, p, "document.querySelector('#log b') !== null") {
		t.Error("a <b> element exists inside #log: a message was rendered as HTML")
	}
	var typed string
	evaluate(t, ctx, p, "document.querySelector('#message').value", &typed)
	if typed != "" {
		t.Errorf("send box still holds %q after sending", typed)
	}
	expectTimestamps(t, ctx, p)

	for _, msg := range []string{`{"op":"subscribe","topic":"prices"}`, "ping", "héllo wörld ✓", "  spaces kept  "} {
		typeAndSend(t, ctx, p, msg)
		waitFor(t, ctx, p, "the echo of "+msg, hasLine("received", msg))
	}

	// Shift+Enter starts a new line in the same message; cat answers each line.
	click(t, ctx, p, "#message")
	insertText(t, ctx, p, "first line")
	pressKeyWith(t, ctx, p, "Enter", cdp.ModShift)
	insertText(t, ctx, p, "second line")
	pressKey(t, ctx, p, "Enter")
	waitFor(t, ctx, p, "one sent message of two lines", hasLine("sent", "first line\nsecond line"))
	waitFor(t, ctx, p, "the echo of both lines", hasLine("received", "first line")+" && "+hasLine("received", "second line"))
	saveScreenshot(t, ctx, p)

	click(t, ctx, p, "#disconnect")
	waitFor(t, ctx, p, "the closed status",
		`document.querySelector('#status').dataset.state === 'closed' && document.querySelector('#log .line.system.close')`)
	expectDisabled(t, ctx, p, map[string]bool{"#connect": false, "#disconnect": true, "#message": true, "#send": true})

	click(t, ctx, p, "#clear")
	waitFor(t, ctx, p, "an empty log", "document.querySelectorAll('#log .line').length === 0")
}

// TestConsoleShowsCloseCode uses the keyboard only, and proves that the
// close code and reason of a failing command reach the user.
func TestConsoleShowsCloseCode(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	addr := startGateway(t, "sh", "-c", `read x; echo "got $x"; exit 3`)
	p := openConsole(t, ctx, "http://"+addr+"/", "light")

	waitFor(t, ctx, p, "focus on #connect", "document.activeElement.id === 'connect'")
	pressKey(t, ctx, p, "Enter")
	waitFor(t, ctx, p, "the open status", `document.querySelector('#status').dataset.state === 'open'`)
	waitFor(t, ctx, p, "focus on #message", "document.activeElement.id === 'message'")

	insertText(t, ctx, p, "ping")
	pressKey(t, ctx, p, "Enter")
	waitFor(t, ctx, p, "the reply", hasLine("received", "got ping"))
	waitFor(t, ctx, p, "the close line", `[...document.querySelectorAll('#log .line.system.close')].some(
		e => e.textContent.includes('1011') && e.textContent.includes('exit status 3'))`)
	waitFor(t, ctx, p, "the closed status", `document.querySelector('#status').dataset.state === 'closed' &&
		document.querySelector('#status').textContent.includes('1011')`)
	expectDisabled(t, ctx, p, map[string]bool{"#connect": false, "#message": true, "#send": true})
	waitFor(t, ctx, p, "focus back on #connect", "document.activeElement.id === 'connect'")
}

// TestConsoleAutoScroll proves that the log follows new lines while the user
// is at the bottom, and stays put, offering a jump, once they scroll up.
func TestConsoleAutoScroll(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	addr := startGateway(t, "cat")
	p := openConsole(t, ctx, "http://"+addr+"/", "dark")
	click(t, ctx, p, "#connect")
	waitFor(t, ctx, p, "the open status", `document.querySelector('#status').dataset.state === 'open'`)

	const atBottom = `(l => l.scrollHeight - l.scrollTop - l.clientHeight < 2)(document.querySelector('#log'))`
	for i := range 30 {
		typeAndSend(t, ctx, p, fmt.Sprintf("line %d", i))
	}
	waitFor(t, ctx, p, "the last echo", hasLine("received", "line 29"))
	if !truthy(t, ctx, p, "document.querySelector('#log').scrollHeight > document.querySelector('#log').clientHeight") {
		t.Fatal("60 lines do not overflow the log; the test proves nothing")
	}
	waitFor(t, ctx, p, "the log scrolled to the newest line", atBottom)

	evaluate(t, ctx, p, "document.querySelector('#log').scrollTop = 0", nil)
	typeAndSend(t, ctx, p, "while scrolled up")
	waitFor(t, ctx, p, "the echo", hasLine("received", "while scrolled up"))
	if top := truthy(t, ctx, p, "document.querySelector('#log').scrollTop === 0"); !top {
		t.Error("the log scrolled although the user had scrolled up")
	}
	waitFor(t, ctx, p, "the jump button", "!document.querySelector('#jump').hidden")
	click(t, ctx, p, "#jump")
	waitFor(t, ctx, p, "the log back at the newest line", atBottom)
	waitFor(t, ctx, p, "the jump button hidden", "document.querySelector('#jump').hidden")
}

// TestConsoleExplainsARefusedHandshake loads the console from one origin and
// connects to another: wsgate refuses it with 403, which a browser shows the
// page only as 1006. The console must say what may have happened and where
// to look, not only the code.
func TestConsoleExplainsARefusedHandshake(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	addr := startGateway(t, "cat")
	_, port, _ := strings.Cut(addr, ":")
	p := openConsole(t, ctx, "http://localhost:"+port+"/", "dark") // origin http://localhost:PORT
	evaluate(t, ctx, p, "document.querySelector('#url').value = "+jsString("ws://"+addr+"/"), nil)
	click(t, ctx, p, "#connect")
	waitFor(t, ctx, p, "the close line", `[...document.querySelectorAll('#log .line.system.close')].some(e => e.textContent.includes('1006'))`)
	var hint string
	evaluate(t, ctx, p, `(document.querySelector('#log .line.system.refused .text') || {}).textContent || ''`, &hint)
	for _, want := range []string{"server log", "origin", "http://localhost:" + port, "403", "--origin", "404"} {
		if !strings.Contains(hint, want) {
			t.Errorf("the explanation %q does not mention %q", hint, want)
		}
	}

	// Connected from its own origin, the console shows no such explanation.
	evaluate(t, ctx, p, "document.querySelector('#url').value = "+jsString("ws://localhost:"+port+"/"), nil)
	click(t, ctx, p, "#clear")
	click(t, ctx, p, "#connect")
	waitFor(t, ctx, p, "the open status", `document.querySelector('#status').dataset.state === 'open'`)
	if truthy(t, ctx, p, "document.querySelector('#log .line.refused')") {
		t.Error("an explanation of a refusal after a connection that opened")
	}
}

// testContext returns a context that ends after testTimeout or with the test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// requireChromium skips the test when there is no browser, or fails it under CI.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(cdp.DefaultPath); err == nil {
		return
	}
	msg := fmt.Sprintf("%s not found: apt-get install chromium", cdp.DefaultPath)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// openConsole starts a browser, sizes its viewport, sets its colour scheme
// ("dark" or "light"), and loads pageURL.
func openConsole(t *testing.T, ctx context.Context, pageURL, scheme string) *cdp.Page {
	t.Helper()
	requireChromium(t)
	b, err := cdp.Launch(ctx, cdp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	p, err := b.NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetViewport(ctx, viewportWidth, viewportHeight); err != nil {
		t.Fatal(err)
	}
	if err := p.SetColorScheme(ctx, scheme); err != nil {
		t.Fatal(err)
	}
	if err := p.Navigate(ctx, pageURL); err != nil {
		t.Fatal(err)
	}
	return p
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// hasLine is an expression that is true once the log has a line of kind
// ("sent", "received") whose message text is exactly text.
func hasLine(kind, text string) string {
	return fmt.Sprintf("[...document.querySelectorAll('#log .line.%s .text')].some(e => e.textContent === %s)",
		kind, jsString(text))
}

func evaluate(t *testing.T, ctx context.Context, p *cdp.Page, expr string, out any) {
	t.Helper()
	if err := p.Evaluate(ctx, expr, out); err != nil {
		t.Fatal(err)
	}
}

func truthy(t *testing.T, ctx context.Context, p *cdp.Page, expr string) bool {
	t.Helper()
	var ok bool
	evaluate(t, ctx, p, "!!("+expr+")", &ok)
	return ok
}

func waitFor(t *testing.T, ctx context.Context, p *cdp.Page, what, expr string) {
	t.Helper()
	if err := p.WaitFor(ctx, expr); err != nil {
		t.Fatalf("waiting for %s: %v\nlog:\n%s", what, err, logText(ctx, p))
	}
}

// logText returns the console's log as the user reads it, for failure messages.
func logText(ctx context.Context, p *cdp.Page) string {
	var lines []string
	err := p.Evaluate(ctx, "[...document.querySelectorAll('#log .line')].map(e => e.textContent)", &lines)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return strings.Join(lines, "\n")
}

func click(t *testing.T, ctx context.Context, p *cdp.Page, selector string) {
	t.Helper()
	if err := p.Click(ctx, selector); err != nil {
		t.Fatal(err)
	}
}

func pressKey(t *testing.T, ctx context.Context, p *cdp.Page, key string) {
	t.Helper()
	pressKeyWith(t, ctx, p, key, 0)
}

func pressKeyWith(t *testing.T, ctx context.Context, p *cdp.Page, key string, modifiers int) {
	t.Helper()
	if err := p.PressKey(ctx, key, modifiers); err != nil {
		t.Fatal(err)
	}
}

func insertText(t *testing.T, ctx context.Context, p *cdp.Page, text string) {
	t.Helper()
	if err := p.InsertText(ctx, text); err != nil {
		t.Fatal(err)
	}
}

// typeAndSend types text into the send box and presses Enter.
func typeAndSend(t *testing.T, ctx context.Context, p *cdp.Page, text string) {
	t.Helper()
	click(t, ctx, p, "#message")
	insertText(t, ctx, p, text)
	pressKey(t, ctx, p, "Enter")
}

// expectDisabled checks the disabled state of each selector.
func expectDisabled(t *testing.T, ctx context.Context, p *cdp.Page, want map[string]bool) {
	t.Helper()
	for sel, disabled := range want {
		if got := truthy(t, ctx, p, "document.querySelector("+jsString(sel)+").disabled"); got != disabled {
			t.Errorf("%s disabled = %v, want %v", sel, got, disabled)
		}
	}
}

// expectTimestamps checks that every log line starts with HH:MM:SS.mmm.
func expectTimestamps(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	var bad []string
	evaluate(t, ctx, p, `[...document.querySelectorAll('#log .line .time')]
		.map(e => e.textContent).filter(s => !/^\d\d:\d\d:\d\d\.\d\d\d$/.test(s))`, &bad)
	if len(bad) > 0 {
		t.Errorf("log times not in HH:MM:SS.mmm form: %q", bad)
	}
}

// saveScreenshot writes the page to the test's temporary directory and, with
// WSGATE_UPDATE_SCREENSHOT=1, to docs/devconsole.png.
func saveScreenshot(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	png, err := p.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(t.TempDir(), "devconsole.png"), png)
	if os.Getenv("WSGATE_UPDATE_SCREENSHOT") == "1" {
		if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, screenshotPath, png)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot written to %s", path)
}

// startGateway runs wsgate on a free loopback port with the dev console and
// command, and returns the address it listens on. The gateway is stopped
// with SIGTERM when the test ends.
func startGateway(t *testing.T, command ...string) string {
	t.Helper()
	args := append([]string{"--port=0", "--address=127.0.0.1", "--devconsole"}, command...)
	cmd := exec.Command(wsgateBin, args...)
	stderr := newLogWatcher()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start wsgate: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { stopGateway(t, cmd, exited, stderr) })

	select {
	case addr := <-stderr.listening:
		return addr
	case err := <-exited:
		exited <- err // for stopGateway
		t.Fatalf("wsgate %s exited before listening: %v\n%s", strings.Join(args, " "), err, stderr)
	case <-time.After(15 * time.Second):
		t.Fatalf("wsgate logged no listening line in 15 s:\n%s", stderr)
	}
	return ""
}

// stopGateway sends SIGTERM, kills the gateway if it has not exited in
// stopWait, and shows its log when the test failed.
func stopGateway(t *testing.T, cmd *exec.Cmd, exited chan error, stderr *logWatcher) {
	cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-exited:
	case <-time.After(stopWait):
		cmd.Process.Kill()
		err = <-exited
		t.Errorf("wsgate did not exit within %v of SIGTERM", stopWait)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Errorf("wait for wsgate: %v", err)
	}
	if t.Failed() {
		t.Logf("wsgate exit: %v; its log:\n%s", err, stderr)
	}
}

// logWatcher collects wsgate's stderr and reports the address of the first
// "listening" line on its listening channel.
type logWatcher struct {
	listening chan string // capacity 1

	mu      sync.Mutex
	buf     bytes.Buffer
	scanned int
	found   bool
}

func newLogWatcher() *logWatcher {
	return &logWatcher{listening: make(chan string, 1)}
}

// Write stores p and looks at the complete lines not yet scanned.
func (w *logWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		rest := w.buf.Bytes()[w.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.scanned += i + 1
		if addr, ok := parseListening(string(rest[:i])); ok && !w.found {
			w.found = true
			w.listening <- addr
		}
	}
}

// String returns everything logged so far.
func (w *logWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// parseListening returns the addr field of a log line whose msg is
// "listening", in slog's text (logfmt) or JSON form.
func parseListening(line string) (string, bool) {
	fields := logfmtFields(line)
	if strings.HasPrefix(strings.TrimSpace(line), "{") {
		fields = jsonFields(line)
	}
	addr := fields["addr"]
	return addr, fields["msg"] == "listening" && addr != ""
}

// logfmtFields splits key=value pairs; values may be Go-quoted, as slog quotes them.
func logfmtFields(line string) map[string]string {
	fields := map[string]string{}
	for {
		line = strings.TrimLeft(line, " ")
		key, rest, ok := strings.Cut(line, "=")
		if !ok || key == "" || strings.Contains(key, " ") {
			return fields
		}
		val, rest, ok := logfmtValue(rest)
		if !ok {
			return fields
		}
		fields[key] = val
		line = rest
	}
}

// logfmtValue reads one value, quoted or bare, from the start of s.
func logfmtValue(s string) (val, rest string, ok bool) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", "", false
		}
		val, err = strconv.Unquote(q)
		return val, s[len(q):], err == nil
	}
	val, rest, _ = strings.Cut(s, " ")
	return val, " " + rest, true
}

// jsonFields returns the string fields of a JSON log line.
func jsonFields(line string) map[string]string {
	var raw map[string]any
	fields := map[string]string{}
	if json.Unmarshal([]byte(line), &raw) != nil {
		return fields
	}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			fields[k] = s
		}
	}
	return fields
}

func TestParseListening(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line, want string
		ok               bool
	}{
		{"text", `time=2025-01-01T00:00:00.000Z level=INFO msg=listening addr=127.0.0.1:43219`, "127.0.0.1:43219", true},
		{"text-quoted", `level=INFO msg="listening" addr="[::1]:8080"`, "[::1]:8080", true},
		{"json", `{"time":"x","level":"INFO","msg":"listening","addr":"127.0.0.1:5"}`, "127.0.0.1:5", true},
		{"other-msg", `level=INFO msg="session ended" addr=127.0.0.1:43219`, "", false},
		{"no-addr", `level=INFO msg=listening`, "", false},
		{"not-logfmt", `panic: something`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseListening(tt.line)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseListening(%q) = %q, %v; want %q, %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}
