package httppolicy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoEndpoint reports a URL path that names no program.
var ErrNoEndpoint = errors.New("no such endpoint")

// Endpoint is the program a request runs, and how its URL splits.
type Endpoint struct {
	// Path is the program, symlinks resolved.
	Path string
	// Args are its arguments.
	Args []string
	// Name is the endpoint's identity in metrics, logs and broadcast
	// stream keys: the program's path under the directory, symlinks
	// resolved, so that however many URLs reach one file (through a
	// symlinked directory, say) it is one endpoint; "/" for a single
	// command. It is bounded by the files served, never by what a client
	// sends.
	Name string
	// ScriptName is SCRIPT_NAME: the URL path of the program.
	ScriptName string
	// PathInfo is PATH_INFO: the rest of the URL path.
	PathInfo string
}

// Router maps a request's URL path to the program it runs.
type Router interface {
	// Route returns the endpoint urlPath names, or ErrNoEndpoint.
	Route(urlPath string) (Endpoint, error)
}

// CommandRouter runs one command for every path, as websocketd does.
type CommandRouter struct {
	// Command is the program (resolved path) and its arguments.
	Command []string
}

// Route returns the command, the whole path as PATH_INFO.
func (c CommandRouter) Route(urlPath string) (Endpoint, error) {
	return Endpoint{Path: c.Command[0], Args: c.Command[1:], Name: "/", ScriptName: "/", PathInfo: urlPath}, nil
}

// DirRouter maps URL paths to files under a directory: the first path
// segments that name a file are the script, the rest is PATH_INFO. A path
// with "." or ".." segments, or one whose file resolves outside the directory
// through a symlink, names nothing.
type DirRouter struct {
	root string // absolute, symlinks resolved
}

// NewDirRouter returns a router for the files under dir.
func NewDirRouter(dir string) (DirRouter, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return DirRouter{}, err
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return DirRouter{}, err
	}
	info, err := os.Stat(root)
	if err != nil {
		return DirRouter{}, err
	}
	if !info.IsDir() {
		return DirRouter{}, errors.New(dir + " is not a directory")
	}
	return DirRouter{root: root}, nil
}

// Route returns the endpoint urlPath names: the first segments that name a
// regular file under the directory, the rest being PATH_INFO.
func (d DirRouter) Route(urlPath string) (Endpoint, error) {
	segments := splitPath(urlPath)
	if segments == nil {
		return Endpoint{}, ErrNoEndpoint
	}
	file := d.root
	for i, seg := range segments {
		file = filepath.Join(file, seg)
		info, err := os.Stat(file)
		if err != nil {
			return Endpoint{}, ErrNoEndpoint
		}
		if info.IsDir() {
			continue
		}
		if !info.Mode().IsRegular() {
			return Endpoint{}, ErrNoEndpoint
		}
		real, err := filepath.EvalSymlinks(file)
		if err != nil || !within(d.root, real) {
			return Endpoint{}, ErrNoEndpoint
		}
		rel, _ := filepath.Rel(d.root, real) // within says it is below root
		e := Endpoint{Path: real, Name: "/" + filepath.ToSlash(rel), ScriptName: "/" + strings.Join(segments[:i+1], "/")}
		if rest := segments[i+1:]; len(rest) > 0 {
			e.PathInfo = "/" + strings.Join(rest, "/")
		}
		return e, nil
	}
	return Endpoint{}, ErrNoEndpoint
}

// Endpoints returns the names of the executables under the directory now,
// at most limit of them (the first found, walking in lexical order, among
// the first 100 per endpoint of the directory's entries), sorted, each once: the endpoints Route would give for them (a symlink is
// named by its target, one outside the directory is left out).
func (d DirRouter) Endpoints(limit int) []string {
	seen, visited := map[string]bool{}, 0
	_ = filepath.WalkDir(d.root, func(path string, entry fs.DirEntry, err error) error {
		if visited++; len(seen) >= limit || visited > 100*limit {
			return fs.SkipAll
		}
		if err != nil || entry.IsDir() {
			return nil // an unreadable subdirectory serves nothing either
		}
		real, err := filepath.EvalSymlinks(path)
		if err != nil || !within(d.root, real) {
			return nil
		}
		info, err := os.Stat(real)
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			return nil
		}
		rel, _ := filepath.Rel(d.root, real)
		seen["/"+filepath.ToSlash(rel)] = true
		return nil
	})
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// splitPath splits a URL path into its non-empty segments; it returns nil
// for a path with "." or ".." segments or a NUL byte.
func splitPath(urlPath string) []string {
	var segments []string
	for _, seg := range strings.Split(urlPath, "/") {
		switch {
		case seg == "":
			continue
		case seg == "." || seg == ".." || strings.ContainsRune(seg, 0):
			return nil
		}
		segments = append(segments, seg)
	}
	if len(segments) == 0 {
		return nil
	}
	return segments
}

// within reports whether path lies inside root.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
