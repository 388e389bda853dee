package cdp

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

const (
	// devtoolsPrefix starts the stderr line that carries the browser's
	// DevTools WebSocket address.
	devtoolsPrefix = "DevTools listening on "
	// tailLines is how many stderr lines are kept for error messages.
	tailLines = 8
)

// lineWriter is the browser's stderr. It finds the DevTools address, keeps
// the last few lines for error messages, and forwards everything to out.
// os/exec's copying goroutine is its only writer; tail may be called from
// any goroutine.
type lineWriter struct {
	out      io.Writer
	devtools chan string // receives the DevTools address once; capacity 1

	mu      sync.Mutex
	partial []byte
	last    []string
	found   bool
}

// newLineWriter returns a lineWriter forwarding to out, or discarding when out is nil.
func newLineWriter(out io.Writer) *lineWriter {
	if out == nil {
		out = io.Discard
	}
	return &lineWriter{out: out, devtools: make(chan string, 1)}
}

// Write forwards p and scans the complete lines in it.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.out.Write(p) // a failing log sink must not stall the browser
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(strings.TrimRight(string(w.partial[:i]), "\r"))
		w.partial = w.partial[i+1:]
	}
}

// line records one complete stderr line.
func (w *lineWriter) line(s string) {
	w.last = append(w.last, s)
	if len(w.last) > tailLines {
		w.last = w.last[1:]
	}
	if addr, ok := strings.CutPrefix(s, devtoolsPrefix); ok && !w.found {
		w.found = true
		w.devtools <- strings.TrimSpace(addr)
	}
}

// tail returns the last stderr lines, for error messages.
func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) == 0 {
		return "(nothing on stderr)"
	}
	return strings.Join(w.last, " | ")
}
