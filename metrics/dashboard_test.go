package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/process"
)

// exportedNames returns every series name wsgate's registry exports, a
// histogram's as its _bucket, _sum and _count, with every event told once
// so that each vector has a series.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	m := New(Build{Version: "x", Commit: "y"})
	m.WatchBus(fakeBus{up: true})
	m.SetLimits(Limits{})
	m.Endpoints([]string{"/a.sh"}, true)
	m.ConnectionClosed("/a.sh", 1000, time.Second)
	m.ChildEnded("/a.sh", process.Status{})
	m.HandshakeRefused(observe.RefusedOrigin)
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	return names
}

var (
	quoted    = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	keywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "by": true, "without": true}
	labelVals = regexp.MustCompile(`^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
)

// metricNames returns the metric names a PromQL expression reads: the
// identifiers left once strings, label matchers, ranges and grouping
// labels are taken out that are neither functions, aggregations nor
// keywords.
func metricNames(expr string) []string {
	expr = quoted.ReplaceAllString(expr, `""`)
	expr = matchers.ReplaceAllString(expr, " ")
	expr = grouping.ReplaceAllString(expr, " ")
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		if !isIdentStart(c) || i > 0 && (isIdentPart(expr[i-1]) || expr[i-1] == '.' || expr[i-1] == '$') {
			i++
			continue
		}
		j := i
		for j < len(expr) && isIdentPart(expr[j]) {
			j++
		}
		word, rest := expr[i:j], strings.TrimLeft(expr[j:], " \t\n")
		if !strings.HasPrefix(rest, "(") && !keywords[strings.ToLower(word)] {
			names = append(names, word)
		}
		i = j
	}
	return names
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func TestMetricNamesFindsWhatAQueryReads(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string]string{
		`sum by (endpoint) (rate(wsgate_x_total{status!="0",e=~"$endpoint"}[$__rate_interval]))`:        "wsgate_x_total",
		`histogram_quantile(0.95, sum(rate(wsgate_h_bucket[5m])) by (le)) / on (instance) wsgate_limit`: "wsgate_h_bucket wsgate_limit",
		`sum(a) / (b > 0) or vector(1e3) unless c offset 5m`:                                            "a b c",
		`wsgate_nope`: "wsgate_nope",
		`vector(1)`:   "",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// dashboardQueries returns every PromQL expression of a Grafana dashboard:
// the panels' targets' expr, and the metric of each label_values variable.
func dashboardQueries(t *testing.T, node any) []string {
	var queries []string
	switch v := node.(type) {
	case map[string]any:
		for key, child := range v {
			s, isString := child.(string)
			switch {
			case key == "expr" && isString:
				queries = append(queries, s)
			case (key == "query" || key == "definition") && isString && labelVals.MatchString(s):
				queries = append(queries, labelVals.FindStringSubmatch(s)[1])
			default:
				queries = append(queries, dashboardQueries(t, child)...)
			}
		}
	case []any:
		for _, child := range v {
			queries = append(queries, dashboardQueries(t, child)...)
		}
	}
	return queries
}

// Every dashboard under examples/grafana parses, and each of its queries
// reads metrics, all of them ones wsgate exports.
func TestGrafanaDashboardsQueryOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "examples", "grafana", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in examples/grafana: %v", err)
	}
	exported := exportedNames(t)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dashboard map[string]any
		if err := json.Unmarshal(data, &dashboard); err != nil {
			t.Errorf("%s does not parse: %v", file, err)
			continue
		}
		if _, ok := dashboard["panels"].([]any); !ok {
			t.Errorf("%s has no panels", file)
		}
		queries := dashboardQueries(t, dashboard)
		if len(queries) == 0 {
			t.Errorf("%s has no queries", file)
		}
		read := map[string]bool{}
		for _, q := range queries {
			names := metricNames(q)
			if len(names) == 0 {
				t.Errorf("%s: query %q reads no metric", file, q)
			}
			for _, name := range names {
				read[name] = true
				if !exported[name] {
					t.Errorf("%s: query %q reads %s, which wsgate does not export", file, q, name)
				}
			}
		}
		var list []string
		for name := range read {
			list = append(list, name)
		}
		sort.Strings(list)
		t.Logf("%s reads %s", file, strings.Join(list, " "))
	}
}

// readmeQueries returns the queries of the README's promql blocks: each is
// the lines after a "#" comment line, up to the next one or a blank line.
func readmeQueries(t *testing.T) []string {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	var current []string
	inBlock := false
	end := func() {
		if len(current) > 0 {
			queries = append(queries, strings.Join(current, " "))
			current = nil
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "```promql":
			inBlock = true
		case !inBlock:
		case trimmed == "```":
			end()
			inBlock = false
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			end()
		default:
			current = append(current, trimmed)
		}
	}
	return queries
}

// The README's example queries (at least three) read only metrics wsgate
// exports, and together the series issue 21 added.
func TestReadmeQueriesReadExportedMetrics(t *testing.T) {
	t.Parallel()
	queries := readmeQueries(t)
	if len(queries) < 3 {
		t.Fatalf("README.md has %d PromQL example queries, want at least 3", len(queries))
	}
	exported, read := exportedNames(t), map[string]bool{}
	for _, q := range queries {
		names := metricNames(q)
		if len(names) == 0 {
			t.Errorf("README query %q reads no metric", q)
		}
		for _, name := range names {
			read[name] = true
			if !exported[name] {
				t.Errorf("README query %q reads %s, which wsgate does not export", q, name)
			}
		}
	}
	for _, name := range []string{"wsgate_program_exits_total", "wsgate_first_message_seconds_bucket", "wsgate_limit_forks"} {
		if !read[name] {
			t.Errorf("no README example query reads %s", name)
		}
	}
}
