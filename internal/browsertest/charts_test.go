package browsertest

// The dev console's chart view, for programs whose output is numbers: JSON
// objects, or columns under a header line as vmstat prints them. With
// WSGATE_UPDATE_SCREENSHOT=1 the vmstat test refreshes
// docs/devconsole-charts.png.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cdp"
)

// vmstatLike prints what "vmstat 1" prints, ten times as fast: a group
// line over a header line, both repeated every ten rows, then rows of
// numbers aligned under the header.
const vmstatLike = `#!/bin/sh
exec awk 'BEGIN {
	for (i = 0; ; i++) {
		if (i % 10 == 0) {
			print "procs -----------memory---------- ---swap-- -----io---- -system-- -------cpu-------"
			print " r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st"
		}
		load = 0.5 + 0.5 * sin(i / 9)
		us = int(10 + 45 * load + 6 * sin(i * 1.7)); sy = int(3 + 6 * load); wa = int(2 * (1 + sin(i / 5)))
		printf "%2d %2d %6d %6d %6d %6d %4d %4d %5d %5d %4d %4d %2d %2d %2d %2d %2d\n",
			int(1 + 3 * load), i % 17 == 3, 0, 812000 - 900 * i, 53000 + 10 * i, 1204000 + 300 * i, 0, 0,
			int(20 * wa + 5 * (1 + sin(i))), int(300 * load + 40 * (1 + sin(i / 2))), int(600 + 500 * load), int(1200 + 900 * load + 100 * sin(i)),
			us, sy, 100 - us - sy - wa, wa, 0
		fflush()
		system("sleep 0.1")
	}
}'
`

// vmstatFields are vmstat's column names, in the order it prints them.
var vmstatFields = strings.Fields("r b swpd free buff cache si so bi bo in cs us sy id wa st")

// TestConsoleChartsColumnsUnderAHeader proves that "wsgate --devconsole
// vmstat 1" gives live charts with no page written: one per column, named
// by the header line and not by the group line above it, kept when the
// header repeats, each with the latest value and a sparkline that fits its
// box.
func TestConsoleChartsColumnsUnderAHeader(t *testing.T) {
	t.Parallel()
	timeout := testTimeout
	if updateScreenshots() {
		timeout += 30 * time.Second // 120 rows for the picture
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	addr := startGateway(t, writeScript(t, "vmstat.sh", vmstatLike))
	p := openConsole(t, ctx, "http://"+addr+"/", "dark")
	connectConsole(t, ctx, p)
	waitFor(t, ctx, p, "the hint that the output is charted", `document.querySelector('#log .line.system.charts-hint')`)
	click(t, ctx, p, "#view-charts")
	waitFor(t, ctx, p, "the chart view", `!document.querySelector('#charts').hidden && document.querySelector('#log').hidden &&
		document.querySelector('#view-charts').getAttribute('aria-pressed') === 'true'`)

	// Past the repeated header: the fields stay vmstat's, once each.
	waitFor(t, ctx, p, "a chart per column, after the header repeated", chartFields(vmstatFields)+" && "+
		pointsOf("free")+" >= 12")
	if got := textOf(t, ctx, p, "#view-charts .count"); got != fmt.Sprint(len(vmstatFields)) {
		t.Errorf("the Charts button counts %q fields, want %d", got, len(vmstatFields))
	}
	// Each chart shows the value of the newest row, in its column.
	for _, c := range []struct {
		field  string
		column int
	}{{"r", 0}, {"free", 3}, {"cache", 5}, {"us", 12}, {"id", 14}} {
		waitFor(t, ctx, p, c.field+" showing the newest row's value", fmt.Sprintf(`(() => {
			const rows = [...document.querySelectorAll('#log .line.received .text')].map(e => e.textContent.trim()).filter(t => /^\d/.test(t));
			return rows.length > 0 && rows[rows.length - 1].split(/\s+/)[%d] === %s;
		})()`, c.column, valueOf(c.field)))
	}
	expectSparklinesInTheirBox(t, ctx, p)
	// free falls row after row: its line goes down, to the bottom right.
	var ys []float64
	evaluate(t, ctx, p, `[...document.querySelector(`+jsString(chartSelector("free"))+` + ' polyline').points].map(pt => pt.y)`, &ys)
	if len(ys) < 12 || ys[0] != 0 || ys[len(ys)-1] != 40 {
		t.Errorf("free's sparkline runs %v; want from the top (0) to the bottom (40)", ys)
	}
	var rng string
	evaluate(t, ctx, p, "document.querySelector("+jsString(chartSelector("st")+" .range")+").textContent", &rng)
	if rng != "min 0 · max 0" {
		t.Errorf("st's range reads %q, want min 0 and max 0", rng)
	}

	if updateScreenshots() {
		waitFor(t, ctx, p, "full sparklines for the picture", pointsOf("free")+" >= 120")
	}
	saveExampleScreenshot(t, ctx, p, "devconsole-charts.png")

	click(t, ctx, p, "#view-log")
	waitFor(t, ctx, p, "the log again", `!document.querySelector('#log').hidden && document.querySelector('#charts').hidden`)
}

// TestConsoleChartsJSONLines proves that the numeric fields of JSON lines
// are charted at any depth, named by their path, that other fields are
// not, and that a field's name is shown as text, never as HTML.
func TestConsoleChartsJSONLines(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	script := writeScript(t, "probe.sh", `#!/bin/sh
i=0
while :; do
	printf '{"t":%d,"name":"probe-%d","temp":%d.5,"<b>load</b>":%d,"mem":{"used":%d,"total":8192},"cores":[%d,%d],"ok":true}\n' \
		$i $i $((20 + i % 3)) $((i % 4)) $((1000 + i)) $((i % 10)) $((10 - i % 10))
	i=$((i + 1))
	sleep 0.1
done
`)
	addr := startGateway(t, script)
	p := openConsole(t, ctx, "http://"+addr+"/", "light")
	connectConsole(t, ctx, p)
	click(t, ctx, p, "#view-charts")
	want := []string{"t", "temp", "<b>load</b>", "mem.used", "mem.total", "cores[0]", "cores[1]"}
	waitFor(t, ctx, p, "a chart per numeric field", chartFields(want)+" && "+pointsOf("t")+" >= 5")
	if truthy(t, ctx, p, "document.querySelector('#charts b') !== null") {
		t.Error("a <b> element exists inside #charts: a field name was rendered as HTML")
	}
	var names []string
	evaluate(t, ctx, p, "[...document.querySelectorAll('#charts .chart .name')].map(e => e.textContent)", &names)
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("the charts are named %q, want %q", names, want)
	}
	waitFor(t, ctx, p, "temp showing the newest line's value", `(() => {
		const lines = [...document.querySelectorAll('#log .line.received .text')].map(e => JSON.parse(e.textContent));
		return lines.length && String(lines[lines.length - 1].temp) === `+valueOf("temp")+`;
	})()`)
	if got := textOf(t, ctx, p, chartSelector("mem.total")+" .value"); got != "8192" {
		t.Errorf("mem.total shows %q, want 8192", got)
	}
	expectSparklinesInTheirBox(t, ctx, p)

	// Clear empties the charts too; the next lines start them again.
	var left int
	evaluate(t, ctx, p, "document.querySelector('#clear').click(), document.querySelectorAll('#charts .chart').length", &left)
	if left != 0 {
		t.Errorf("%d charts left after Clear", left)
	}
	waitFor(t, ctx, p, "charts started again", chartFields(want))
}

// writeScript writes an executable script into the test's temporary
// directory and returns its path.
func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// connectConsole clicks Connect and waits for the open state.
func connectConsole(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	click(t, ctx, p, "#connect")
	waitFor(t, ctx, p, "the open status", `document.querySelector('#status').dataset.state === 'open'`)
}

// chartSelector selects the chart of field.
func chartSelector(field string) string {
	return `#charts .chart[data-field=` + jsString(field) + `]`
}

// chartFields is true once the charts are exactly those of fields, in order.
func chartFields(fields []string) string {
	return "JSON.stringify([...document.querySelectorAll('#charts .chart')].map(c => c.dataset.field)) === JSON.stringify(" + jsValue(fields) + ")"
}

// pointsOf is the number of points on field's sparkline.
func pointsOf(field string) string {
	return "(document.querySelector(" + jsString(chartSelector(field)+" polyline") + ")?.points.numberOfItems ?? 0)"
}

// valueOf is the latest value field's chart shows.
func valueOf(field string) string {
	return "document.querySelector(" + jsString(chartSelector(field)+" .value") + ")?.textContent"
}

func textOf(t *testing.T, ctx context.Context, p *cdp.Page, selector string) string {
	t.Helper()
	var text string
	evaluate(t, ctx, p, "document.querySelector("+jsString(selector)+")?.textContent ?? ''", &text)
	return text
}

// expectSparklinesInTheirBox checks that every point of every sparkline
// lies inside its 120 x 40 box, the newest at the right edge.
func expectSparklinesInTheirBox(t *testing.T, ctx context.Context, p *cdp.Page) {
	t.Helper()
	var bad []string
	evaluate(t, ctx, p, `[...document.querySelectorAll('#charts .chart')].flatMap(c => {
		const l = c.querySelector('polyline'), pts = [...l.points];
		return pts.filter(pt => !(pt.x >= 0 && pt.x <= 120 && pt.y >= 0 && pt.y <= 40)).map(pt => c.dataset.field + ' ' + pt.x + ',' + pt.y)
			.concat(pts.length && pts[pts.length - 1].x === 120 ? [] : [c.dataset.field + ': newest not at the right edge']);
	})`, &bad)
	if len(bad) > 0 {
		t.Errorf("sparkline points outside their box: %q", bad)
	}
}
