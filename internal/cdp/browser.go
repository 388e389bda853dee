// Package cdp is a minimal Chrome DevTools Protocol client: it starts a
// headless Chromium, opens pages in it and drives them (navigate, evaluate,
// wait, type, click, screenshot, viewport). It is just enough for wsgate's
// browser tests, and it talks only to the browser it started, on loopback.
package cdp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// DefaultPath is the browser binary Launch uses when Options.Path is empty.
const DefaultPath = "/usr/bin/chromium"

const (
	// waitDelay bounds how long Close waits for the browser's stderr to reach
	// end of file after the process group was killed.
	waitDelay = 2 * time.Second
	// groupGoneWait bounds how long Close waits for the browser's killed
	// helper processes to disappear after the main process was reaped.
	groupGoneWait = 2 * time.Second
	// removeTries is how many times Close tries to remove the profile
	// directory; a dying renderer can still be writing to it the first time.
	removeTries = 5
)

// Options configures Launch. The zero value is ready to use.
type Options struct {
	// Path is the browser binary; DefaultPath when empty.
	Path string
	// Args are extra command-line flags, added after the default ones.
	Args []string
	// Stderr receives the browser's standard error; it is discarded when nil.
	Stderr io.Writer
}

// Browser is a running headless Chromium with its own fresh profile. Its
// methods are safe to call from several goroutines.
type Browser struct {
	cmd      *exec.Cmd
	profile  string
	httpBase string // http://127.0.0.1:PORT, the DevTools HTTP endpoint
	client   *http.Client
	exited   chan struct{} // closed once the browser process has been reaped

	mu    sync.Mutex
	pages map[*Page]struct{}

	closeOnce sync.Once
	closeErr  error
}

// defaultArgs are the flags every launch uses: headless, no first-run work,
// nothing that talks to the network on its own, a throwaway profile.
func defaultArgs(profile string) []string {
	return []string{
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		"--disable-default-apps",
		"--disable-breakpad",
		"--disable-domain-reliability",
		"--disable-client-side-phishing-detection",
		"--disable-dev-shm-usage",
		"--mute-audio",
		"--no-proxy-server",
		"--password-store=basic",
		"--user-data-dir=" + profile,
		"--remote-debugging-port=0",
		"about:blank",
	}
}

// browserEnv is the environment the browser runs in: the caller's, with the
// config and cache directories moved into the profile directory, so that
// nothing (such as the crash reporter's database) is left in $HOME.
func browserEnv(profile string) []string {
	return append(os.Environ(),
		"XDG_CONFIG_HOME="+filepath.Join(profile, "config"),
		"XDG_CACHE_HOME="+filepath.Join(profile, "cache"),
	)
}

// Launch starts the browser and waits, bounded by ctx, until its DevTools
// endpoint is listening. ctx bounds only the start: the browser runs until
// Close, which the caller must always call.
func Launch(ctx context.Context, opts Options) (*Browser, error) {
	profile, err := os.MkdirTemp("", "cdp-profile-")
	if err != nil {
		return nil, fmt.Errorf("launch browser: create profile dir: %w", err)
	}
	b, err := start(ctx, opts, profile)
	if err != nil {
		os.RemoveAll(profile)
		return nil, fmt.Errorf("launch browser: %w", err)
	}
	return b, nil
}

// start runs the browser process and reads the DevTools address from its stderr.
func start(ctx context.Context, opts Options, profile string) (*Browser, error) {
	path := opts.Path
	if path == "" {
		path = DefaultPath
	}
	lw := newLineWriter(opts.Stderr)
	cmd := exec.Command(path, append(defaultArgs(profile), opts.Args...)...)
	cmd.Stderr = lw
	cmd.Env = browserEnv(profile)
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &Browser{
		cmd:     cmd,
		profile: profile,
		client:  &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		exited:  make(chan struct{}),
		pages:   make(map[*Page]struct{}),
	}
	go b.reap()
	wsURL, err := b.awaitDevTools(ctx, lw)
	if err != nil {
		b.kill()
		return nil, err
	}
	b.httpBase = "http://" + wsURL.Host
	return b, nil
}

// reap waits for the browser process so it never lingers as a zombie.
func (b *Browser) reap() {
	defer close(b.exited)
	b.cmd.Wait() // the exit status of a killed browser says nothing useful
}

// awaitDevTools returns the browser's DevTools WebSocket URL once it is printed.
func (b *Browser) awaitDevTools(ctx context.Context, lw *lineWriter) (*url.URL, error) {
	select {
	case raw := <-lw.devtools:
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("parse DevTools address %q: %w", raw, err)
		}
		return u, nil
	case <-b.exited:
		return nil, fmt.Errorf("browser exited before listening: %s", lw.tail())
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for DevTools address: %w; stderr: %s", ctx.Err(), lw.tail())
	}
}

// kill ends every process of the browser's group and waits until they are gone.
func (b *Browser) kill() {
	killGroup(b.cmd.Process)
	<-b.exited
	awaitGroupGone(b.cmd.Process, groupGoneWait)
}

// target is one entry of the DevTools HTTP endpoint's target list.
type target struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	WSURL string `json:"webSocketDebuggerUrl"`
}

// NewPage opens a new blank tab and connects to it.
func (b *Browser) NewPage(ctx context.Context) (*Page, error) {
	t, err := b.newTarget(ctx)
	if err != nil {
		return nil, fmt.Errorf("open page: %w", err)
	}
	p, err := b.attach(ctx, t)
	if err != nil {
		b.closeTarget(t.ID)
		return nil, fmt.Errorf("open page: %w", err)
	}
	return p, nil
}

// newTarget asks the DevTools HTTP endpoint for a new about:blank tab.
func (b *Browser) newTarget(ctx context.Context) (target, error) {
	var t target
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.httpBase+"/json/new?about:blank", nil)
	if err != nil {
		return t, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return t, fmt.Errorf("%s: %s", resp.Status, body)
	}
	err = json.NewDecoder(resp.Body).Decode(&t)
	return t, err
}

// attach connects to a target and enables the page events Navigate needs.
func (b *Browser) attach(ctx context.Context, t target) (*Page, error) {
	c, err := dial(ctx, t.WSURL)
	if err != nil {
		return nil, err
	}
	p := &Page{browser: b, targetID: t.ID, c: c}
	if err := c.call(ctx, "Page.enable", nil, nil); err != nil {
		c.close()
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pages[p] = struct{}{}
	return p, nil
}

// closeTarget closes a tab through the HTTP endpoint; failures are ignored
// because the browser is about to go away or the tab already has.
func (b *Browser) closeTarget(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.httpBase+"/json/close/"+url.PathEscape(id), nil)
	if err != nil {
		return
	}
	if resp, err := b.client.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// forget drops a closed page from the browser's set.
func (b *Browser) forget(p *Page) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pages, p)
}

// Close disconnects every page, kills the browser and its whole process
// group, waits for it, and removes the profile directory. Every goroutine the
// package started has ended when Close returns. Close is idempotent and safe
// to call concurrently; later calls return the first call's result.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.shutdown() })
	return b.closeErr
}

// shutdown does Close's work once.
func (b *Browser) shutdown() error {
	b.mu.Lock()
	pages := b.pages
	b.pages = map[*Page]struct{}{}
	b.mu.Unlock()
	for p := range pages {
		p.c.close()
	}
	b.kill()
	b.client.CloseIdleConnections()
	if err := removeAll(b.profile); err != nil {
		return fmt.Errorf("close browser: %w", err)
	}
	return nil
}

// removeAll removes dir, retrying briefly while dying processes still write to it.
func removeAll(dir string) error {
	var err error
	for range removeTries {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("remove profile dir: %w", err)
}
