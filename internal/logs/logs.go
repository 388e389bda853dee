// Package logs sets up wsgate's logger: websocketd's six level names, and
// warn, mapped onto slog's scale, and a text or JSON handler that prints
// those names.
package logs

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Levels, websocketd's six and warn mapped onto slog's scale. Access lines
// sit between trace and info, so that the default level, access, shows one
// line per connection and hides the per-message trace. Warn is for what
// deserves a look but pages no one: a child's stderr, a setting that is
// ignored.
const (
	LevelDebug  = slog.Level(-8)
	LevelTrace  = slog.LevelDebug
	LevelAccess = slog.Level(-2)
	LevelInfo   = slog.LevelInfo
	LevelWarn   = slog.LevelWarn
	LevelError  = slog.LevelError
	LevelFatal  = slog.Level(12)
)

var levelNames = []struct {
	name  string
	level slog.Level
}{
	{"debug", LevelDebug},
	{"trace", LevelTrace},
	{"access", LevelAccess},
	{"info", LevelInfo},
	{"warn", LevelWarn},
	{"error", LevelError},
	{"fatal", LevelFatal},
}

// LevelNames lists the names ParseLevel accepts, lowest first.
func LevelNames() []string {
	names := make([]string, len(levelNames))
	for i, l := range levelNames {
		names[i] = l.name
	}
	return names
}

// ParseLevel returns the level called name, in any case; "warning" is warn.
func ParseLevel(name string) (slog.Level, error) {
	if strings.EqualFold(name, "warning") {
		return LevelWarn, nil
	}
	for _, l := range levelNames {
		if strings.EqualFold(l.name, name) {
			return l.level, nil
		}
	}
	return 0, fmt.Errorf("unknown log level %q: use one of %s", name, strings.Join(LevelNames(), ", "))
}

// levelName is the upper-case name of the highest level at or below level.
func levelName(level slog.Level) string {
	for i := len(levelNames) - 1; i >= 0; i-- {
		if level >= levelNames[i].level {
			return strings.ToUpper(levelNames[i].name)
		}
	}
	return "DEBUG"
}

// An Option changes what New's logger writes.
type Option func(*options)

type options struct {
	noTime bool
}

// WithoutTime leaves the time out of every record, for a log collector that
// stamps lines itself, such as journald.
func WithoutTime() Option { return func(o *options) { o.noTime = true } }

// New returns a logger writing records at level or above to w, as text or
// JSON (format "text" or "json"), with the levels named as above. In JSON, a
// duration is written in milliseconds, its key ending in "_ms": "duration"
// becomes "duration_ms". Text writes it as Go does, with its unit ("1.5s").
func New(w io.Writer, format string, level slog.Level, opts ...Option) (*slog.Logger, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	json := format == "json"
	handlerOpts := &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch {
			case a.Key == slog.LevelKey && len(groups) == 0:
				if l, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(levelName(l))
				}
			case a.Key == slog.TimeKey && len(groups) == 0 && o.noTime:
				return slog.Attr{}
			case json && a.Value.Kind() == slog.KindDuration:
				return slog.Float64(a.Key+"_ms", milliseconds(a.Value.Duration()))
			}
			return a
		},
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, handlerOpts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, handlerOpts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q: use text or json", format)
}

// milliseconds is d in milliseconds, to the microsecond.
func milliseconds(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
