// Package plainhttp serves the requests that are not WebSocket handshakes:
// the developer console for an endpoint's path, CGI scripts, static files,
// else 404.
package plainhttp

import (
	_ "embed"
	"errors"
	"net/http"
	"net/http/cgi"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/fairness"
	"github.com/wsgate/wsgate/internal/httppolicy"
)

//go:embed console.html
var consolePage []byte

// Handler serves requests that are not WebSocket handshakes: the
// developer console, then CGI scripts, then static files, else 404. A file
// under the static directory wins over the console, which answers only the
// paths that name no file there.
type Handler struct {
	// Console serves the developer console for GET requests to the paths
	// Endpoints routes.
	Console   bool
	Endpoints httppolicy.Router
	// CGI routes the CGI scripts, run with CGIEnv; nil for none.
	CGI    *httppolicy.DirRouter
	CGIEnv []string
	// Static serves static files; nil for none.
	Static *StaticFiles
	// Forks bounds the CGI scripts running at once, with the gateway's
	// children.
	Forks *fairness.Limit
}

// Serve serves r for a client admission found to be identity: the
// AUTH_TYPE, REMOTE_USER and AUTH_* entries a CGI script gets.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, identity []string) {
	if h.Console && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !h.Static.has(r.URL.Path) {
		if _, err := h.Endpoints.Route(r.URL.Path); err == nil {
			serveConsole(w)
			return
		}
	}
	if h.CGI != nil {
		if e, err := h.CGI.Route(r.URL.Path); err == nil {
			h.serveCGI(w, r, e, identity)
			return
		}
	}
	if h.Static != nil {
		h.Static.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

func serveConsole(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The page is self-contained: nothing but itself and its own WebSocket.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src ws: wss:; img-src data:")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(consolePage)
}

func (h *Handler) serveCGI(w http.ResponseWriter, r *http.Request, e httppolicy.Endpoint, identity []string) {
	if !h.Forks.Acquire() {
		http.Error(w, "too many connections", http.StatusTooManyRequests)
		return
	}
	defer h.Forks.Release()
	handler := &cgi.Handler{
		Path: e.Path,
		Root: e.ScriptName,
		Dir:  filepath.Dir(e.Path),
		Env:  append(slices.Clip(h.CGIEnv), identity...),
	}
	handler.ServeHTTP(w, r)
}

// StaticFiles serves the files under a directory. Paths cannot leave it,
// through ".." or through symlinks.
type StaticFiles struct {
	root *os.Root
	http.Handler
}

// NewStatic returns a handler of the files under dir.
func NewStatic(dir string) (*StaticFiles, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	info, err := root.Stat(".")
	if err != nil || !info.IsDir() {
		root.Close()
		return nil, errors.New(dir + " is not a directory")
	}
	return &StaticFiles{root: root, Handler: http.FileServerFS(root.FS())}, nil
}

// has reports whether urlPath names a file to serve: a file, or a
// directory with an index.html. A nil StaticFiles has none.
func (f *StaticFiles) has(urlPath string) bool {
	if f == nil {
		return false
	}
	name := strings.TrimPrefix(path.Clean("/"+urlPath), "/")
	if name == "" {
		name = "."
	}
	info, err := f.root.Stat(name)
	if err == nil && info.IsDir() {
		info, err = f.root.Stat(path.Join(name, "index.html"))
	}
	return err == nil && info.Mode().IsRegular()
}
