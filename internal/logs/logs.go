// Package logs sets up wsgate's logger: websocketd's six level names mapped
// onto slog's scale, and a text or JSON handler that prints those names.
package logs

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Levels, websocketd's six mapped onto slog's scale. Access lines sit between
// trace and info, so that the default level, access, shows one line per
// connection and hides the per-message trace.
const (
	LevelDebug  = slog.Level(-8)
	LevelTrace  = slog.LevelDebug
	LevelAccess = slog.Level(-2)
	LevelInfo   = slog.LevelInfo
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

// ParseLevel returns the level called name, in any case.
func ParseLevel(name string) (slog.Level, error) {
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

// New returns a logger writing records at level or above to w, as text or
// JSON (format "text" or "json"), with the levels named as above.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey && len(groups) == 0 {
				if l, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(levelName(l))
				}
			}
			return a
		},
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q: use text or json", format)
}
