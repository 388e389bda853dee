package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// serverOrder fixes the table's columns whatever --servers selected.
var serverOrder = []string{"wsgate", "websocketd", "floor", "bound"}

// cell collects what one scenario produced on one server over the repetitions.
type cell struct {
	values   [][]float64 // one slice per successful repetition, in metrics order
	failures []string    // one line per failed repetition
}

// results holds every cell, by scenario name then server name.
type results struct {
	cells map[string]map[string]*cell
}

// newResults returns an empty table of results.
func newResults() *results {
	return &results{cells: map[string]map[string]*cell{}}
}

// get returns the cell for a scenario and server, creating it if needed.
func (r *results) get(scenario, server string) *cell {
	row := r.cells[scenario]
	if row == nil {
		row = map[string]*cell{}
		r.cells[scenario] = row
	}
	c := row[server]
	if c == nil {
		c = &cell{}
		row[server] = c
	}
	return c
}

// failed reports whether any run failed a correctness check.
func (r *results) failed() bool {
	for _, row := range r.cells {
		for _, c := range row {
			if len(c.failures) > 0 {
				return true
			}
		}
	}
	return false
}

// median returns the median of metric i over the successful repetitions, and
// false when the cell has no number to show.
func (c *cell) median(i int) (float64, bool) {
	if c == nil || len(c.failures) > 0 || len(c.values) == 0 {
		return 0, false
	}
	v := make([]float64, len(c.values))
	for rep, vals := range c.values {
		v[rep] = vals[i]
	}
	return median(v), true
}

// text is what the cell shows for metric m (index i).
func (c *cell) text(i int, m metric) string {
	switch {
	case c == nil:
		return "-"
	case len(c.failures) > 0:
		return "FAIL"
	}
	v, ok := c.median(i)
	if !ok {
		return "-"
	}
	return formatNumber(v, m.decimals)
}

// writeTable prints the markdown table of medians and ratios, then the notes
// that explain any FAIL.
func (r *results) writeTable(w io.Writer, selected []scenario) {
	fmt.Fprintln(w, "| scenario | metric | wsgate | websocketd | floor | bound | wsgate/websocketd | wsgate/floor | wsgate/bound | bound/floor |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, sc := range selected {
		row := r.cells[sc.name]
		for i, m := range sc.metrics {
			cols := []string{sc.name, m.name + arrow(m)}
			for _, name := range serverOrder {
				cols = append(cols, row[name].text(i, m))
			}
			cols = append(cols,
				ratio(row["wsgate"], row["websocketd"], i), ratio(row["wsgate"], row["floor"], i),
				ratio(row["wsgate"], row["bound"], i), ratio(row["bound"], row["floor"], i))
			fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better. Ratios divide the first server's median by the second's.")
	r.writeNotes(w, selected)
}

// writeNotes lists, per scenario and server, why a cell is FAIL.
func (r *results) writeNotes(w io.Writer, selected []scenario) {
	for _, sc := range selected {
		for _, name := range serverOrder {
			c := r.cells[sc.name][name]
			if c == nil {
				continue
			}
			for _, f := range c.failures {
				fmt.Fprintf(w, "\n- FAIL: %s on %s: %s", sc.name, name, f)
			}
		}
	}
	fmt.Fprintln(w)
}

// arrow marks which way a metric is better.
func arrow(m metric) string {
	if m.higher {
		return " ↑"
	}
	return " ↓"
}

// ratio formats a/b for metric i, or "-" when either side has no number or
// b is zero (e.g. "children left" is 0 on every correct server).
func ratio(a, b *cell, i int) string {
	x, okA := a.median(i)
	y, okB := b.median(i)
	if !okA || !okB || y == 0 {
		return "-"
	}
	return strconv.FormatFloat(x/y, 'f', 2, 64) + "x"
}

// formatNumber prints v with the given decimals and thousands separators.
func formatNumber(v float64, decimals int) string {
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return sign + b.String()
}
