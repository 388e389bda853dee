package cdp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// pollInterval is how often WaitFor re-evaluates its expression.
const pollInterval = 50 * time.Millisecond

// Page is one browser tab. Its methods are safe to call concurrently, but a
// page is naturally driven by one goroutine at a time.
type Page struct {
	browser  *Browser
	targetID string
	c        *conn

	closeOnce sync.Once
}

// Navigate loads url and waits until the page's load event has fired.
func (p *Page) Navigate(ctx context.Context, url string) error {
	loaded := p.c.subscribe("Page.loadEventFired")
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.c.call(ctx, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		p.c.unsubscribe(loaded)
		return fmt.Errorf("navigate to %s: %w", url, err)
	}
	if res.ErrorText != "" {
		p.c.unsubscribe(loaded)
		return fmt.Errorf("navigate to %s: %s", url, res.ErrorText)
	}
	if _, err := p.c.wait(ctx, loaded); err != nil {
		return fmt.Errorf("navigate to %s: wait for load: %w", url, err)
	}
	return nil
}

// remoteObject is the part of a Runtime.RemoteObject that Evaluate reads.
type remoteObject struct {
	Type                string          `json:"type"`
	Value               json.RawMessage `json:"value"`
	UnserializableValue string          `json:"unserializableValue"`
	Description         string          `json:"description"`
}

// evalResult is the answer to Runtime.evaluate.
type evalResult struct {
	Result           remoteObject `json:"result"`
	ExceptionDetails *struct {
		Text      string        `json:"text"`
		Exception *remoteObject `json:"exception"`
	} `json:"exceptionDetails"`
}

// Evaluate runs a JavaScript expression in the page, awaiting it if it is a
// promise, and stores its JSON value in out (when out is non-nil and the
// value is not undefined). A thrown exception is returned as an error.
func (p *Page) Evaluate(ctx context.Context, expr string, out any) error {
	params := map[string]any{
		"expression":    expr,
		"returnByValue": true,
		"awaitPromise":  true,
		"userGesture":   true,
	}
	var res evalResult
	if err := p.c.call(ctx, "Runtime.evaluate", params, &res); err != nil {
		return fmt.Errorf("evaluate %s: %w", clip(expr), err)
	}
	if d := res.ExceptionDetails; d != nil {
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg = d.Exception.Description
		}
		return fmt.Errorf("evaluate %s: %s", clip(expr), msg)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	if err := json.Unmarshal(res.Result.Value, out); err != nil {
		return fmt.Errorf("evaluate %s: decode value: %w", clip(expr), err)
	}
	return nil
}

// clip shortens a JavaScript expression for error messages.
func clip(expr string) string {
	const limit = 80
	if len(expr) > limit {
		expr = expr[:limit] + "..."
	}
	return fmt.Sprintf("%q", expr)
}

// WaitFor evaluates expr every 50 ms until its value is truthy, ctx is done,
// or the page's connection ends. Errors thrown by expr count as "not yet"
// (the page may be navigating); the last one is included if ctx runs out.
func (p *Page) WaitFor(ctx context.Context, expr string) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var lastErr error
	for {
		var ok bool
		lastErr = p.Evaluate(ctx, "!!("+expr+")", &ok)
		switch {
		case lastErr == nil && ok:
			return nil
		case errors.Is(lastErr, ErrClosed):
			return fmt.Errorf("wait for %s: %w", clip(expr), lastErr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last error: %v)", clip(expr), ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// Screenshot captures the visible part of the page as PNG bytes.
func (p *Page) Screenshot(ctx context.Context) ([]byte, error) {
	var res struct {
		Data string `json:"data"`
	}
	if err := p.c.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		return nil, fmt.Errorf("capture screenshot: %w", err)
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return nil, fmt.Errorf("capture screenshot: decode: %w", err)
	}
	return png, nil
}

// SetViewport makes the page's viewport width x height CSS pixels at a
// device scale factor of 1, as on a desktop screen.
func (p *Page) SetViewport(ctx context.Context, width, height int) error {
	params := map[string]any{
		"width":             width,
		"height":            height,
		"deviceScaleFactor": 1,
		"mobile":            false,
	}
	if err := p.c.call(ctx, "Emulation.setDeviceMetricsOverride", params, nil); err != nil {
		return fmt.Errorf("set viewport %dx%d: %w", width, height, err)
	}
	return nil
}

// SetColorScheme makes the page see prefers-color-scheme as scheme
// ("dark" or "light"); an empty scheme goes back to the browser's own.
func (p *Page) SetColorScheme(ctx context.Context, scheme string) error {
	params := map[string]any{
		"features": []map[string]string{{"name": "prefers-color-scheme", "value": scheme}},
	}
	if err := p.c.call(ctx, "Emulation.setEmulatedMedia", params, nil); err != nil {
		return fmt.Errorf("set color scheme %q: %w", scheme, err)
	}
	return nil
}

// InsertText types text into the focused element, as an input method would.
func (p *Page) InsertText(ctx context.Context, text string) error {
	if err := p.c.call(ctx, "Input.insertText", map[string]any{"text": text}, nil); err != nil {
		return fmt.Errorf("insert text: %w", err)
	}
	return nil
}

// key describes a key for Input.dispatchKeyEvent.
type key struct {
	code string
	vk   int    // Windows virtual key code, which Chromium uses to act on the key
	text string // what a key press types, if anything
}

// keys are the keys PressKey knows, by their DOM KeyboardEvent.key name.
var keys = map[string]key{
	"Enter":      {code: "Enter", vk: 13, text: "\r"},
	"Tab":        {code: "Tab", vk: 9},
	"Escape":     {code: "Escape", vk: 27},
	"Backspace":  {code: "Backspace", vk: 8},
	"ArrowUp":    {code: "ArrowUp", vk: 38},
	"ArrowDown":  {code: "ArrowDown", vk: 40},
	"ArrowLeft":  {code: "ArrowLeft", vk: 37},
	"ArrowRight": {code: "ArrowRight", vk: 39},
	" ":          {code: "Space", vk: 32, text: " "},
}

// Modifier bits for PressKey, as Input.dispatchKeyEvent defines them; add
// them up to hold several keys.
const (
	ModAlt   = 1 // Alt held down
	ModCtrl  = 2 // Control held down
	ModMeta  = 4 // Meta (Command) held down
	ModShift = 8 // Shift held down
)

// PressKey presses and releases one key (a DOM key name such as "Enter",
// "Tab" or "ArrowUp") in the focused element, with modifiers (ModShift etc.).
func (p *Page) PressKey(ctx context.Context, name string, modifiers int) error {
	k, ok := keys[name]
	if !ok {
		return fmt.Errorf("press key %q: unknown key", name)
	}
	down := map[string]any{
		"type": "keyDown", "key": name, "code": k.code, "modifiers": modifiers,
		"windowsVirtualKeyCode": k.vk, "nativeVirtualKeyCode": k.vk,
	}
	if k.text != "" {
		down["text"] = k.text
	}
	up := map[string]any{
		"type": "keyUp", "key": name, "code": k.code, "modifiers": modifiers,
		"windowsVirtualKeyCode": k.vk, "nativeVirtualKeyCode": k.vk,
	}
	for _, ev := range []map[string]any{down, up} {
		if err := p.c.call(ctx, "Input.dispatchKeyEvent", ev, nil); err != nil {
			return fmt.Errorf("press key %q: %w", name, err)
		}
	}
	return nil
}

// Click scrolls the first element matching a CSS selector into view and
// clicks the middle of it with the left mouse button, as a user would.
func (p *Page) Click(ctx context.Context, selector string) error {
	x, y, err := p.center(ctx, selector)
	if err != nil {
		return fmt.Errorf("click %s: %w", selector, err)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		ev := map[string]any{"type": typ, "x": x, "y": y, "button": "left", "clickCount": 1}
		if typ == "mouseMoved" {
			ev["button"] = "none"
		}
		if err := p.c.call(ctx, "Input.dispatchMouseEvent", ev, nil); err != nil {
			return fmt.Errorf("click %s: %w", selector, err)
		}
	}
	return nil
}

// center returns the viewport coordinates of the middle of an element.
func (p *Page) center(ctx context.Context, selector string) (x, y float64, err error) {
	return p.pointIn(ctx, selector, 0.5, 0.5)
}

// pointIn scrolls the first element matching selector into view and
// returns the viewport coordinates of a point of it: fx and fy are
// fractions of its width and height from its top left corner.
func (p *Page) pointIn(ctx context.Context, selector string, fx, fy float64) (x, y float64, err error) {
	sel, _ := json.Marshal(selector)
	expr := fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) return null;
		el.scrollIntoView({block: "nearest", inline: "nearest"});
		const r = el.getBoundingClientRect();
		return [r.left + r.width * %g, r.top + r.height * %g];
	})()`, sel, fx, fy)
	var pt []float64
	if err := p.Evaluate(ctx, expr, &pt); err != nil {
		return 0, 0, err
	}
	if len(pt) != 2 {
		return 0, 0, errors.New("no such element")
	}
	return pt[0], pt[1], nil
}

// Close disconnects from the page and closes its tab. It is idempotent.
func (p *Page) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.browser.forget(p)
		err = p.c.close()
		p.browser.closeTarget(p.targetID)
	})
	return err
}

// Hover moves the mouse, with no button held, to a point of the first
// element matching a CSS selector: fx and fy are fractions of its width
// and height from its top left corner (0.5, 0.5 is the middle).
func (p *Page) Hover(ctx context.Context, selector string, fx, fy float64) error {
	x, y, err := p.pointIn(ctx, selector, fx, fy)
	if err != nil {
		return fmt.Errorf("hover %s: %w", selector, err)
	}
	ev := map[string]any{"type": "mouseMoved", "x": x, "y": y, "button": "none"}
	if err := p.c.call(ctx, "Input.dispatchMouseEvent", ev, nil); err != nil {
		return fmt.Errorf("hover %s: %w", selector, err)
	}
	return nil
}
