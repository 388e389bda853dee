package logs

import (
	"bytes"
	"strings"
	"testing"
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
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), "debug, trace, access, info, error, fatal") {
		t.Errorf("ParseLevel(loud) = %v, want an error listing the levels", err)
	}
	if _, err := New(&bytes.Buffer{}, "xml", LevelInfo); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("New(xml) = %v, want an error naming the format", err)
	}
}
