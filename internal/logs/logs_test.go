package logs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEachLevelIsParsedAndPrintedByItsName(t *testing.T) {
	t.Parallel()
	for _, name := range LevelNames() {
		level, err := ParseLevel(strings.ToUpper(name))
		if err != nil {
			t.Fatalf("ParseLevel(%q): %v", name, err)
		}
		var out bytes.Buffer
		logger, err := New(&out, "text", LevelDebug)
		if err != nil {
			t.Fatal(err)
		}
		logger.Log(t.Context(), level, "hello")
		if want := "level=" + strings.ToUpper(name) + " "; !strings.Contains(out.String(), want) {
			t.Errorf("level %s logged as %q, want %q", name, out.String(), want)
		}
	}
}

func TestRecordsBelowTheLevelAreDropped(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	logger, _ := New(&out, "json", LevelAccess)
	logger.Log(t.Context(), LevelTrace, "hidden")
	logger.Log(t.Context(), LevelAccess, "shown")
	if got := out.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"level":"ACCESS"`) {
		t.Errorf("logged %q, want only the access record", got)
	}
}

func TestUnknownNamesAreErrorsThatListTheKnownOnes(t *testing.T) {
	t.Parallel()
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), "debug, trace, access, info, warn, error, fatal") {
		t.Errorf("ParseLevel(loud) = %v, want an error listing the levels", err)
	}
	if _, err := New(&bytes.Buffer{}, "xml", LevelInfo); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("New(xml) = %v, want an error naming the format", err)
	}
}

func TestWarnAndWarningNameTheWarnLevel(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"warn", "WARN", "warning"} {
		level, err := ParseLevel(name)
		if err != nil || level != LevelWarn {
			t.Errorf("ParseLevel(%q) = %v, %v; want the warn level", name, level, err)
		}
	}
	if !(LevelInfo < LevelWarn && LevelWarn < LevelError) {
		t.Error("warn is not between info and error")
	}
}

func TestJSONGivesDurationsInMillisecondsUnderAKeyThatSaysSo(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	logger, _ := New(&out, "json", LevelInfo)
	logger.Info("done", "duration", 1500*time.Millisecond+250*time.Microsecond, "count", 3)
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	if rec["duration_ms"] != 1500.25 || rec["duration"] != nil || rec["count"] != float64(3) {
		t.Errorf("record %v, want duration_ms=1500.25 and no duration", rec)
	}

	out.Reset()
	logger, _ = New(&out, "text", LevelInfo)
	logger.Info("done", "duration", 1500*time.Millisecond)
	if !strings.Contains(out.String(), " duration=1.5s") {
		t.Errorf("text record %q, want duration=1.5s", out.String())
	}
}

func TestWithoutTimeLeavesTheTimeOut(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		var with, without bytes.Buffer
		logger, _ := New(&with, format, LevelInfo)
		logger.Info("hello")
		logger, _ = New(&without, format, LevelInfo, WithoutTime())
		logger.Info("hello")
		if !strings.Contains(with.String(), "time") || strings.Contains(without.String(), "time") {
			t.Errorf("%s: with time %q, without %q", format, with.String(), without.String())
		}
	}
}
