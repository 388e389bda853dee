package cdp

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const testPage = `<!doctype html>
<title>cdp test</title>
<button id="b" onclick="setTimeout(() => { window.clicked = (window.clicked || 0) + 1 }, 100)">click</button>
<input id="in" onkeydown="if (event.key === 'Enter') window.entered = this.value">
`

// launch starts a browser for one test, or skips the test when there is none.
func launch(t *testing.T) *Browser {
	t.Helper()
	if _, err := exec.LookPath(DefaultPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: apt-get install chromium", DefaultPath)
		}
		t.Skipf("%s is missing: apt-get install chromium", DefaultPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Launch(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(testPage))
	}))
}

func TestDrivePage(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := serve(t)
	defer srv.Close()
	b := launch(t)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p, err := b.NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetViewport(ctx, 400, 300); err != nil {
		t.Fatal(err)
	}
	if err := p.Navigate(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}

	var title string
	if err := p.Evaluate(ctx, "document.title", &title); err != nil || title != "cdp test" {
		t.Fatalf("title = %q, %v; want %q", title, err, "cdp test")
	}
	var sum int
	if err := p.Evaluate(ctx, "Promise.resolve(40 + 2)", &sum); err != nil || sum != 42 {
		t.Fatalf("awaited promise = %d, %v; want 42", sum, err)
	}

	if err := p.Click(ctx, "#b"); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, "window.clicked === 1"); err != nil {
		t.Fatal(err)
	}

	if err := p.Click(ctx, "#in"); err != nil {
		t.Fatal(err)
	}
	if err := p.InsertText(ctx, "typed <b>text</b>"); err != nil {
		t.Fatal(err)
	}
	if err := p.PressKey(ctx, "Enter", 0); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, "window.entered === 'typed <b>text</b>'"); err != nil {
		t.Fatal(err)
	}

	shot, err := p.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got.X != 400 || got.Y != 300 {
		t.Errorf("screenshot size = %v, want 400x300", got)
	}
	if err := p.Close(); err != nil {
		t.Errorf("close page: %v", err)
	}
}

func TestEvaluateErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := launch(t)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := b.NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}

	err = p.Evaluate(ctx, "(() => { throw new Error('boom') })()", nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("thrown exception: err = %v, want one mentioning boom", err)
	}
	if err := p.Click(ctx, "#nothing"); err == nil {
		t.Error("click on a missing element: no error")
	}
	if err := p.PressKey(ctx, "NoSuchKey", 0); err == nil {
		t.Error("unknown key: no error")
	}

	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	err = p.WaitFor(short, "false")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor(false) = %v, want a deadline error", err)
	}
}

func TestCloseCleansUp(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := launch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := b.NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := b.cmd.Process.Pid
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(b.profile); !os.IsNotExist(err) {
		t.Errorf("profile dir %s still there: %v", b.profile, err)
	}
	if err := p.Evaluate(ctx, "1", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("evaluate after Close = %v, want ErrClosed", err)
	}
	if out, err := exec.Command("pgrep", "-g", strconv.Itoa(pid)).Output(); err == nil {
		t.Errorf("processes left in the browser's group: %s", out)
	}
}

func TestLaunchMissingBinary(t *testing.T) {
	defer goleak.VerifyNone(t)
	_, err := Launch(context.Background(), Options{Path: "/nonexistent/chromium"})
	if err == nil {
		t.Fatal("Launch with a missing binary: no error")
	}
}
