package browsertest

// The broadcast examples (examples/dashboard and examples/chat), run as the
// README says: the real wsgate with --broadcast, the example's own script
// and its page served by --staticdir, opened in headless Chromium. With
// WSGATE_UPDATE_SCREENSHOT=1 the tests also refresh docs/dashboard.png and
// docs/chat.png (the dashboard's waits for a full minute of samples first).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cdp"
)

// updateScreenshots reports whether the tests refresh the pictures in docs/.
func updateScreenshots() bool { return os.Getenv("WSGATE_UPDATE_SCREENSHOT") == "1" }

// TestDashboardExample proves that the dashboard draws the live stream of
// stats.sh, that a second viewer shares the first one's process and gets the
// last minute at once, and that the page shows a restart of the gateway and
// comes back by itself.
func TestDashboardExample(t *testing.T) {
	t.Parallel()
	timeout := testTimeout
	if updateScreenshots() {
		timeout += 2 * time.Minute // a full minute of samples for the picture
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)

	dir := examplePath(t, "dashboard")
	args := []string{"--broadcast", "--replay=60", "--staticdir=" + dir, filepath.Join(dir, "stats.sh")}
	if updateScreenshots() {
		// The machine the picture is taken on may have no traffic but
		// loopback's; stats.sh counts the interfaces it is given.
		args = append(args, "lo")
	}
	g := startExample(t, args...)
	// The pages reach the gateway through a relay, so that a new gateway can
	// take over the same address.
	r := startRelay(t, g.addr)
	b := launchBrowser(t, ctx)
	p := openExamplePage(t, ctx, b, "http://"+r.addr()+"/", "dark")

	var fetched []string
	evaluate(t, ctx, p, "performance.getEntriesByType('resource').map(e => e.name)", &fetched)
	if len(fetched) > 0 {
		t.Errorf("the page loaded other resources; it must be self-contained: %q", fetched)
	}
	waitForPage(t, ctx, p, "the live state", isState("live"))
	waitForPage(t, ctx, p, "two points on every chart", allCharts(">= 2"))

	const size, rate = `\d+(\.\d)? (B|KiB|MiB|GiB|TiB)`, `\d+(\.\d)? (B|KiB|MiB|GiB)/s`
	readouts := map[string]string{
		"#cpu-value":   `^\d+ %$`,
		"#cpu-sub":     `^\d+ CPUs?$`,
		"#cores-value": `^\d+ %$`,
		"#cores-sub":   `^busiest cpu\d+ · \d+ cores?$`,
		"#load-value":  `^\d+\.\d\d$`,
		"#load-sub":    `^1 min · 5 min \d+\.\d\d · 15 min \d+\.\d\d$`,
		"#mem-value":   `^` + size + `$`,
		"#mem-sub":     `^of ` + size + ` · \d+ % used$`,
		"#net-rx":      `^↓ ` + rate + `$`,
		"#net-tx":      `^↑ ` + rate + `$`,
		"#net-sub":     `^peak in the last minute ↓ ` + rate + ` · ↑ ` + rate + `$`,
		"#io-read":     `^R ` + rate + `$`,
		"#io-write":    `^W ` + rate + `$`,
		"#disk-sub":    `^/ \d+ % used · ` + size + ` of ` + size + `$`,
		"#host":        `^[A-Za-z0-9._-]+$`,
	}
	for sel, re := range readouts {
		var text string
		evaluate(t, ctx, p, "document.querySelector("+jsString(sel)+").textContent", &text)
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("%s shows %q, want a reading like /%s/", sel, text, re)
		}
	}
	// Every point lies inside its chart, the newest at the right edge.
	var bad []string
	evaluate(t, ctx, p, `[...document.querySelectorAll('svg.chart polyline')].flatMap(l =>
		[...l.points].filter(pt => !(pt.x >= 0 && pt.x <= 300 && pt.y >= 0 && pt.y <= 100)).map(pt => pt.x + ',' + pt.y)
		.concat(l.points.getItem(l.points.numberOfItems - 1).x === 300 ? [] : ['newest not at the right edge']))`, &bad)
	if len(bad) > 0 {
		t.Errorf("points outside the charts: %q", bad)
	}

	expectDashboardAxes(t, ctx, p)
	expectDashboardScales(t, ctx, p)
	expectPerCoreRows(t, ctx, p)
	expectHoverTooltips(t, ctx, p)

	// A second viewer joins the same stats.sh, and --replay hands it samples
	// taken before it opened the page (stats.sh's t and the page's clock are
	// the same machine's).
	waitForPage(t, ctx, p, "four samples", pointCount("#cpu")+" >= 4")
	second := openExamplePage(t, ctx, b, "http://"+r.addr()+"/index.html", "light")
	waitForPage(t, ctx, second, "four samples on the second viewer", pointCount("#cpu")+" >= 4")
	var oldest, opened float64
	evaluate(t, ctx, second, "samples[0].t", &oldest)
	evaluate(t, ctx, second, "performance.timeOrigin / 1000", &opened)
	if oldest > opened-2 {
		t.Errorf("the second viewer's oldest sample is from %.0f, its page opened at %.1f: no replay", oldest, opened)
	}
	// The same samples, to the byte: one process sampled them.
	var firstSeen, secondSeen []string
	evaluate(t, ctx, second, "samples.map(s => JSON.stringify(s))", &secondSeen)
	evaluate(t, ctx, p, "samples.map(s => JSON.stringify(s))", &firstSeen)
	shared := 0
	for _, s := range secondSeen {
		if slices.Contains(firstSeen, s) {
			shared++
		}
	}
	if shared < 4 {
		t.Errorf("the viewers share %d samples, want at least 4 (one stats.sh for both):\n%q\n%q", shared, firstSeen, secondSeen)
	}

	if updateScreenshots() {
		waitForPage(t, ctx, p, "a full minute of samples", "samples[samples.length - 1].t - samples[0].t >= 58")
	}
	hover(t, ctx, p, "#net svg.chart", 0.8, 0.3) // the picture shows a tooltip
	waitForPage(t, ctx, p, "the tooltip of the network chart", "!document.querySelector('#net .tip').hidden")
	saveExampleScreenshot(t, ctx, p, "dashboard.png")

	// The gateway goes away: the page says so, with the close code and
	// reason, and keeps trying; a new gateway at the same address brings it
	// back with new samples, no reload needed.
	var before float64
	evaluate(t, ctx, p, "samples[samples.length - 1].t", &before)
	g.stop()
	waitForPage(t, ctx, p, "the reconnecting state with the close code",
		isState("reconnecting")+` && /^Reconnecting in \d+ s · closed 1001 server shutting down/.test(document.querySelector('#status').textContent)`)
	waitForPage(t, ctx, p, "a failed attempt", isState("reconnecting")+
		` && /^Reconnecting in \d+ s · closed 1001 server shutting down · \d+ attempts? failed$/.test(document.querySelector('#status').textContent)`)
	r.retarget(startExample(t, args...).addr)
	waitForPage(t, ctx, p, "the live state again", isState("live"))
	waitForPage(t, ctx, p, "a new sample", fmt.Sprintf("samples[samples.length - 1].t > %.0f", before))
	waitForPage(t, ctx, second, "the second viewer live again", isState("live"))
}

// TestChatExample proves that two people in the room see each other's
// messages, as text; that a newcomer gets the history; that a dropped
// connection comes back without showing anything twice; and that another
// query string is another room, where a line that is not the page's JSON
// shows as it is.
func TestChatExample(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := examplePath(t, "chat")
	g := startExample(t, "--broadcast", "--replay=50", "--lingerms=600000",
		"--staticdir="+dir, filepath.Join(dir, "room.sh"))
	b := launchBrowser(t, ctx)
	room := "http://" + g.addr + "/"
	ada := openExamplePage(t, ctx, b, room, "light")
	grace := openExamplePage(t, ctx, b, room, "dark")

	var fetched []string
	evaluate(t, ctx, ada, "performance.getEntriesByType('resource').map(e => e.name)", &fetched)
	if len(fetched) > 0 {
		t.Errorf("the page loaded other resources; it must be self-contained: %q", fetched)
	}
	for _, p := range []*cdp.Page{ada, grace} {
		waitForPage(t, ctx, p, "the live state", isState("live")+" && !document.querySelector('#send').disabled")
		if !truthy(t, ctx, p, "document.querySelectorAll('#messages .msg').length === 0") {
			t.Fatalf("a new room shows messages:\n%s", pageText(ctx, p))
		}
	}
	setName(t, ctx, ada, "Ada")
	setName(t, ctx, grace, "Grace")

	conversation := []string{
		"Ada: Rolling out v2.4 to the edge nodes now.",
		"Grace: Thanks! The dashboard looks calm so far.",
		"Ada: Heads-up: markup stays text here, <b>x</b> included.",
	}
	say(t, ctx, ada, "Rolling out v2.4 to the edge nodes now.")
	waitForPage(t, ctx, grace, "Ada's message", hasMessages(conversation[:1]))
	waitForPage(t, ctx, ada, "Ada's own message, from the room", hasMessages(conversation[:1]))
	say(t, ctx, grace, "Thanks! The dashboard looks calm so far.")
	// Two people's lines reach the room in the order the room reads them:
	// Ada answers once she has read Grace.
	waitForPage(t, ctx, ada, "Grace's message", hasMessages(conversation[:2]))
	say(t, ctx, ada, "Heads-up: markup stays text here, <b>x</b> included.")
	for _, p := range []*cdp.Page{ada, grace} {
		waitForPage(t, ctx, p, "the whole conversation", hasMessages(conversation))
		if truthy(t, ctx, p, "document.querySelector('#messages b') !== null") {
			t.Error("a <b> element exists inside #messages: a message was rendered as HTML")
		}
		var typed string
		evaluate(t, ctx, p, "document.querySelector('#text').value", &typed)
		if typed != "" {
			t.Errorf("the message box still holds %q after sending", typed)
		}
	}
	if !truthy(t, ctx, ada, `[...document.querySelectorAll('#messages .msg')].map(m => m.classList.contains('mine')).join() === 'true,false,true'`) {
		t.Error("Ada's page does not mark exactly her own messages as hers")
	}

	// A newcomer gets the history (--replay), in order, and joins in.
	linus := openExamplePage(t, ctx, b, room, "light")
	waitForPage(t, ctx, linus, "the history", isState("live")+" && "+hasMessages(conversation))
	setName(t, ctx, linus, "Linus")
	conversation = append(conversation, "Linus: Just joined: I can read everything above.")
	say(t, ctx, linus, "Just joined: I can read everything above.")
	for _, p := range []*cdp.Page{ada, grace, linus} {
		waitForPage(t, ctx, p, "Linus's message", hasMessages(conversation))
	}

	// Ada's connection drops: her page says so, comes back from the last
	// line it had (last_event_id), and gets what was said meanwhile, once.
	evaluate(t, ctx, ada, "connection.socket.close()", nil)
	waitForPage(t, ctx, ada, "the reconnecting state", isState("reconnecting")+" && document.querySelector('#send').disabled")
	conversation = append(conversation, "Grace: Are you there, Ada?")
	say(t, ctx, grace, "Are you there, Ada?")
	waitForPage(t, ctx, ada, "the live state again", isState("live"))
	if !truthy(t, ctx, ada, `/[?&]last_event_id=[A-Za-z0-9]+%3A[1-9]/.test(connection.socket.url)`) {
		var u string
		evaluate(t, ctx, ada, "connection.socket.url", &u)
		t.Errorf("Ada's page came back as %q, not from the position of her last line", u)
	}
	waitForPage(t, ctx, ada, "what was said while she was away", hasMessages(conversation))
	conversation = append(conversation, "Grace: Welcome back, Ada.")
	say(t, ctx, grace, "Welcome back, Ada.")
	waitForPage(t, ctx, ada, "the conversation without repeats", hasMessages(conversation))

	// Another query string is another room, with its own process.
	ops := openExamplePage(t, ctx, b, room+"?room=ops", "light")
	waitForPage(t, ctx, ops, "the ops room, live and empty",
		isState("live")+" && document.querySelectorAll('#messages .msg').length === 0 && document.querySelector('#room').textContent === '# ops'")
	setName(t, ctx, ops, "Ops")
	say(t, ctx, ops, "Only the ops room sees this.")
	waitForPage(t, ctx, ops, "the ops message", hasMessages([]string{"Ops: Only the ops room sees this."}))
	// A line from another client, not JSON, is shown as it is, as text.
	evaluate(t, ctx, ops, "connection.socket.send('a plain line from a script <i>y</i>')", nil)
	waitForPage(t, ctx, ops, "the plain line", hasMessages([]string{"Ops: Only the ops room sees this.", "?: a plain line from a script <i>y</i>"}))
	if truthy(t, ctx, ops, "document.querySelector('#messages i') !== null") {
		t.Error("an <i> element exists inside #messages: a plain line was rendered as HTML")
	}
	conversation = append(conversation, "Linus: Bye for now.")
	say(t, ctx, linus, "Bye for now.")
	waitForPage(t, ctx, ada, "the lobby without the ops message", hasMessages(conversation))

	saveExampleScreenshot(t, ctx, ada, "chat.png")
}

// examplePath returns the absolute path of examples/name.
func examplePath(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// exampleGateway is a wsgate the test may stop before it ends.
type exampleGateway struct {
	addr string
	stop func()
}

// startExample runs wsgate with args on a free loopback port, without the
// dev console, so that plain requests reach --staticdir. It is stopped with
// SIGTERM by stop or when the test ends.
func startExample(t *testing.T, args ...string) *exampleGateway {
	t.Helper()
	args = append([]string{"--port=0", "--address=127.0.0.1"}, args...)
	cmd := exec.Command(wsgateBin, args...)
	stderr := newLogWatcher()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start wsgate: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	g := &exampleGateway{stop: func() { once.Do(func() { stopGateway(t, cmd, exited, stderr) }) }}
	t.Cleanup(g.stop)

	select {
	case g.addr = <-stderr.listening:
		return g
	case err := <-exited:
		exited <- err // for stopGateway
		t.Fatalf("wsgate %s exited before listening: %v\n%s", strings.Join(args, " "), err, stderr)
	case <-time.After(15 * time.Second):
		t.Fatalf("wsgate logged no listening line in 15 s:\n%s", stderr)
	}
	return nil
}

// launchBrowser starts a headless Chromium, closed when the test ends.
func launchBrowser(t *testing.T, ctx context.Context) *cdp.Browser {
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
	return b
}

// openExamplePage opens a tab of the README screenshot's size in b, with
// colour scheme ("dark" or "light"), on pageURL.
func openExamplePage(t *testing.T, ctx context.Context, b *cdp.Browser, pageURL, scheme string) *cdp.Page {
	t.Helper()
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

// isState is true once the page's status shows state.
func isState(state string) string {
	return "document.querySelector('#status').dataset.state === " + jsString(state)
}

// pointCount is the number of points on the line of a chart's card.
func pointCount(card string) string {
	return "(document.querySelector(" + jsString(card+" svg.chart polyline") + ")?.points.numberOfItems ?? 0)"
}

// allCharts is true once every line on every line chart (five of them;
// the sixth is the per-core map) has a number of points that satisfies cmp
// (such as ">= 2").
func allCharts(cmp string) string {
	return "[...document.querySelectorAll('svg.chart:not(.heat)')].length === 5 && " +
		"[...document.querySelectorAll('svg.chart:not(.heat)')].every(s => s.querySelector('polyline')) && " +
		"[...document.querySelectorAll('svg.chart polyline')].every(l => l.points.numberOfItems " + cmp + ")"
}

// expectDashboardAxes checks that every chart labels its axes: the y-axis
// in the unit of what it draws, the x-axis in seconds.
func expectDashboardAxes(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	const size, rate = `^(0|\d+(\.\d)? (B|KiB|MiB|GiB|TiB))$`, `^(0|\d+(\.\d)? (B|KiB|MiB|GiB)/s)$`
	units := map[string]string{
		"#cpu": `^\d+ %$`, "#load": `^\d+(\.\d+)?$`, "#mem": size, "#net": rate, "#disk": rate, "#cores": `^cpu\d+$`,
	}
	for card, unit := range units {
		var ticks, times []string
		evaluate(t, ctx, p, "[...document.querySelectorAll("+jsString(card+" .yaxis span")+")].map(e => e.textContent)", &ticks)
		evaluate(t, ctx, p, "[...document.querySelectorAll("+jsString(card+" .xaxis span")+")].map(e => e.textContent)", &times)
		if len(ticks) < 1 || (card != "#cores" && len(ticks) != 3) {
			t.Errorf("%s: y-axis labels %q, want three (one per core on the core map)", card, ticks)
		}
		for _, tick := range ticks {
			if !regexp.MustCompile(unit).MatchString(tick) {
				t.Errorf("%s: y-axis label %q, want one like /%s/", card, tick, unit)
			}
		}
		if strings.Join(times, " ") != "−60 s −30 s now" {
			t.Errorf("%s: x-axis labels %q", card, times)
		}
	}
}

// expectDashboardScales checks that the scales fit the data: memory's line
// reaches at least 40 % of its chart's height, and received and sent (read
// and written) lie on either side of the middle line, so that they can be
// told apart even when they are equal.
func expectDashboardScales(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	var memTop float64
	evaluate(t, ctx, p, "Math.min(...[...document.querySelector('#mem polyline').points].map(pt => pt.y))", &memTop)
	if memTop > 60.5 {
		t.Errorf("memory's highest point is at y=%.1f of 100: the scale does not fit the data", memTop)
	}
	for _, card := range []string{"#net", "#disk"} {
		var wrong []string
		evaluate(t, ctx, p, `[...document.querySelectorAll(`+jsString(card+" polyline")+`)].flatMap(l =>
			[...l.points].filter(pt => l.classList.contains('a') ? pt.y > 50 : pt.y < 50).map(pt => l.getAttribute('class') + ' ' + pt.y))`, &wrong)
		if len(wrong) > 0 {
			t.Errorf("%s: points on the wrong side of the middle line: %q", card, wrong)
		}
	}
}

// expectPerCoreRows checks that the core map has a row per CPU, named, with
// a cell per sample.
func expectPerCoreRows(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	var got struct {
		CPUs, Cores int
		Rows        []string
		Cells       []int
		Samples     int
	}
	evaluate(t, ctx, p, `({
		CPUs: samples[samples.length - 1].cpus, Cores: samples[samples.length - 1].cores.length,
		Rows: [...document.querySelectorAll('#cores g.core')].map(g => g.dataset.core),
		Cells: [...document.querySelectorAll('#cores g.core')].map(g => g.querySelectorAll('rect.cell').length),
		Samples: samples.length })`, &got)
	if got.Cores != got.CPUs || len(got.Rows) != got.CPUs || got.CPUs < 1 {
		t.Fatalf("cpus %d, cores in the sample %d, rows on the map %q: want a row per CPU", got.CPUs, got.Cores, got.Rows)
	}
	for i, row := range got.Rows {
		if row != fmt.Sprintf("cpu%d", i) || got.Cells[i] != got.Samples {
			t.Errorf("row %d is %q with %d cells, want cpu%d with %d", i, row, got.Cells[i], i, got.Samples)
		}
	}
}

// expectHoverTooltips moves the mouse over charts: the chart under it shows
// the values of the sample there, and every chart marks that moment.
func expectHoverTooltips(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	hover(t, ctx, p, "#mem svg.chart", 0.95, 0.5)
	waitForPage(t, ctx, p, "the memory tooltip with a sample's value", `(() => {
		const tip = document.querySelector('#mem .tip');
		return !tip.hidden && /\d?\d:\d\d:\d\d/.test(tip.textContent) &&
			samples.some(s => tip.textContent.includes('used' + fmtBytes(s.mem_used)));
	})()`)
	if !truthy(t, ctx, p, `[...document.querySelectorAll('svg.chart .cursor')].every(c => c.getAttribute('visibility') === 'visible')`) {
		t.Error("the moment under the pointer is not marked on every chart")
	}
	if !truthy(t, ctx, p, `[...document.querySelectorAll('.tip')].filter(t => !t.hidden).length === 1`) {
		t.Error("more than one tooltip shows")
	}
	hover(t, ctx, p, "#cores svg.chart", 0.95, 0.2)
	waitForPage(t, ctx, p, "the per-core tooltip", `/cpu0\d+ %/.test(document.querySelector('#cores .tip').textContent)`)
	hover(t, ctx, p, "header.top", 0.5, 0.5)
	waitForPage(t, ctx, p, "no tooltip once the pointer left", `[...document.querySelectorAll('.tip')].every(t => t.hidden)`)
}

// hover moves the mouse to a point of an element (fractions of its size).
func hover(t *testing.T, ctx context.Context, p *cdp.Page, selector string, fx, fy float64) {
	t.Helper()
	if err := p.Hover(ctx, selector, fx, fy); err != nil {
		t.Fatal(err)
	}
}

// hasMessages is true once the chat shows exactly these messages, each
// "name: text", in this order.
func hasMessages(want []string) string {
	return "JSON.stringify([...document.querySelectorAll('#messages .msg')].map(m => " +
		"m.querySelector('.name').textContent + ': ' + m.querySelector('.text').textContent)) === " +
		"JSON.stringify(" + jsValue(want) + ")"
}

// jsValue writes v as a JavaScript literal.
func jsValue(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// setName types name into the chat's name field, over what it holds.
func setName(t *testing.T, ctx context.Context, p *cdp.Page, name string) {
	t.Helper()
	click(t, ctx, p, "#name")
	evaluate(t, ctx, p, "document.querySelector('#name').select()", nil)
	insertText(t, ctx, p, name)
}

// say types text into the chat's message box and presses Enter.
func say(t *testing.T, ctx context.Context, p *cdp.Page, text string) {
	t.Helper()
	click(t, ctx, p, "#text")
	insertText(t, ctx, p, text)
	pressKey(t, ctx, p, "Enter")
}

// waitForPage waits for expr, and shows the page's text if it never holds.
func waitForPage(t *testing.T, ctx context.Context, p *cdp.Page, what, expr string) {
	t.Helper()
	if err := p.WaitFor(ctx, expr); err != nil {
		t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, pageText(ctx, p))
	}
}

// pageText is what the page shows, for failure messages; it is read even
// when ctx has run out.
func pageText(ctx context.Context, p *cdp.Page) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var text string
	if err := p.Evaluate(ctx, "document.body.innerText", &text); err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return text
}

// saveExampleScreenshot writes the page to the test's temporary directory
// and, with WSGATE_UPDATE_SCREENSHOT=1, to docs/name.
func saveExampleScreenshot(t *testing.T, ctx context.Context, p *cdp.Page, name string) {
	t.Helper()
	png, err := p.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(t.TempDir(), name), png)
	if updateScreenshots() {
		writeFile(t, filepath.Join("..", "..", "docs", name), png)
	}
}

// relay forwards TCP connections from a loopback port of its own to a
// gateway, which the test can replace: the page keeps its address while one
// gateway stops and another starts. (Starting the new gateway on the old
// one's port instead could take a port that another test has just been
// given as free.) A connection it cannot forward is closed at once, as a
// gateway that is down would refuse it.
type relay struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	target string
	conns  map[net.Conn]struct{}
}

// startRelay listens on a free loopback port and forwards to target until
// the test ends.
func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// retarget sends the connections that come next to target.
func (r *relay) retarget(target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target = target
}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.forward(c)
	}
}

// forward copies both ways between c and the target, passing on each
// side's end of stream, until both have ended.
func (r *relay) forward(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	r.mu.Lock()
	target := r.target
	r.mu.Unlock()
	s, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer s.Close()
	if !r.track(c, s) {
		return
	}
	defer r.untrack(c, s)
	up := make(chan struct{})
	go func() {
		defer close(up)
		_, _ = io.Copy(s, c)
		_ = s.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(c, s)
	_ = c.(*net.TCPConn).CloseWrite()
	<-up
}

// track records live connections, so that close can end them; it reports
// false once the relay is closed.
func (r *relay) track(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		return false
	}
	for _, c := range conns {
		r.conns[c] = struct{}{}
	}
	return true
}

func (r *relay) untrack(conns ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range conns {
		delete(r.conns, c)
	}
}

// close stops accepting, ends every connection, and waits for its goroutines.
func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}
