package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testrun"
)

// Resume in the browser: the dashboard example and the README's client
// follow positions (last_event_id), so that a reconnection loses and
// repeats nothing.

// TestDashboardResumesAcrossARestartWithNoGapInItsSeries runs the dashboard
// on two instances sharing the sampler through Redis, as the README's "More
// than one machine" does. The page's instance restarts: another instance,
// whose viewer keeps it in the stream, takes the sampler over, and the page,
// back on the restarted instance, gets the samples it missed, none twice,
// with no reset.
func TestDashboardResumesAcrossARestartWithNoGapInItsSeries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	t.Cleanup(cancel)
	redis := testrun.StartRedis(t)
	dir := examplePath(t, "dashboard")
	args := []string{"--broadcast", "--replay=60", "--bus=" + redis.URL(), "--staticdir=" + dir, filepath.Join(dir, "stats.sh")}
	a, b := startExample(t, args...), startExample(t, args...)
	r := startRelay(t, a.addr)
	br := launchBrowser(t, ctx)
	p := openExamplePage(t, ctx, br, "http://"+r.addr()+"/", "dark")
	waitForPage(t, ctx, p, "the live state and three samples", isState("live")+" && samples.length >= 3")
	other := openExamplePage(t, ctx, br, "http://"+b.addr+"/", "light") // keeps b in the stream
	waitForPage(t, ctx, other, "the other viewer live", isState("live")+" && samples.length >= 3")

	var before float64
	evaluate(t, ctx, p, "samples[samples.length - 1].t", &before)
	a.stop()
	waitForPage(t, ctx, p, "the reconnecting state", isState("reconnecting"))
	time.Sleep(2 * time.Second) // samples go by, from the sampler b took over
	r.retarget(startExample(t, args...).addr)
	waitForPage(t, ctx, p, "the live state again, with samples from after the restart",
		isState("live")+` && samples[samples.length - 1].t > `+formatFloat(before+3))

	var positions []int
	var times []float64
	var resets int
	evaluate(t, ctx, p, "positions", &positions)
	evaluate(t, ctx, p, "samples.map(s => s.t)", &times)
	evaluate(t, ctx, p, "resets", &resets)
	if resets != 0 {
		t.Errorf("the page started over %d times: its history was lost", resets)
	}
	if len(positions) < 6 || len(positions) != len(times) {
		t.Fatalf("the page has %d lines and %d samples, want the same, at least 6: %v", len(positions), len(times), positions)
	}
	for i := 1; i < len(positions); i++ {
		if positions[i] != positions[i-1]+1 {
			t.Fatalf("the page's lines are %v: a gap or a duplicate at %d", positions, i)
		}
	}
	for i := 1; i < len(times); i++ {
		if d := times[i] - times[i-1]; d < 0 || d > 4 {
			t.Errorf("samples %v: %v s between two, want each no older than the one before, with no hole", times, d)
		}
	}
	t.Logf("%d lines, %v, across the restart", len(positions), positions)
}

// formatFloat writes a number for a JavaScript expression.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// TestResumeClientInTheREADMEGetsEveryLineOnceAcrossReconnects runs the
// README's resume client, as it is written there, in the browser, against
// a stream whose connections the test cuts.
func TestResumeClientInTheREADMEGetsEveryLineOnceAcrossReconnects(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- resume client -->\n```js\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("the README has no resume client (a js block after <!-- resume client -->)")
	}
	code := string(block[1])
	if n := strings.Count(strings.TrimSpace(code), "\n") + 1; n > 25 {
		t.Errorf("the README's client is %d lines long, want about 20", n)
	}
	static := t.TempDir()
	counter := filepath.Join(t.TempDir(), "count.sh")
	for path, text := range map[string]string{
		filepath.Join(static, "index.html"): "<!doctype html><title>resume</title>",
		counter:                             "#!/bin/sh\ni=0; while :; do i=$((i+1)); echo \"line $i\"; sleep 0.02; done\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The only client: --lingerms keeps the stream while it is away.
	g := startExample(t, "--broadcast", "--replay=500", "--lingerms=60000", "--staticdir="+static, counter)
	br := launchBrowser(t, ctx)
	p := openExamplePage(t, ctx, br, "http://"+g.addr+"/", "light")
	// The README's follow(), with the example's URL and callbacks made to
	// record what arrives, and its sockets kept for the test to cut.
	code = regexp.MustCompile(`(?m)^follow\(.*$`).ReplaceAllString(code, "")
	code = strings.Replace(code, "new WebSocket(", "window.__socket = new WebSocket(", 1)
	setup := code + `
window.got = []; window.resets = 0;
follow("ws://` + g.addr + `/", (line, id) => got.push(id + " " + line), () => resets++);
true`
	var ok bool
	evaluate(t, ctx, p, setup, &ok)
	waitForPage(t, ctx, p, "lines", "got.length >= 20")
	for range 3 {
		var n int
		evaluate(t, ctx, p, "window.__socket.close(), got.length", &n)
		time.Sleep(1500 * time.Millisecond) // gone a while: lines go by meanwhile
		waitForPage(t, ctx, p, "lines after the reconnection", "window.__socket.readyState === 1 && got.length >= "+strconv.Itoa(n+50))
	}
	var got []string
	var resets int
	evaluate(t, ctx, p, "got", &got)
	evaluate(t, ctx, p, "resets", &resets)
	if resets != 0 || len(got) < 100 {
		t.Fatalf("%d lines, %d resets; want at least 100 and none", len(got), resets)
	}
	for i, g := range got {
		// "EPOCH:SEQ line N": count.sh's N is the line's position.
		f := strings.Fields(g)
		if len(f) != 3 || !strings.HasSuffix(f[0], ":"+f[2]) || f[2] != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q: a gap or a duplicate (want line %d)", i, g, i+1)
		}
	}
}
