package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// errNoEndpoint reports a URL path that names no program.
var errNoEndpoint = errors.New("no such endpoint")

// endpoint is the program a request runs, and how its URL splits.
type endpoint struct {
	path       string   // the program
	args       []string // its arguments
	scriptName string   // SCRIPT_NAME: the URL path of the program
	pathInfo   string   // PATH_INFO: the rest of the URL path
}

// router maps a request's URL path to the program it runs.
type router interface {
	route(urlPath string) (endpoint, error)
}

// commandRouter runs one command for every path, as websocketd does.
type commandRouter struct {
	command []string
}

func (c commandRouter) route(urlPath string) (endpoint, error) {
	return endpoint{path: c.command[0], args: c.command[1:], scriptName: "/", pathInfo: urlPath}, nil
}

// dirRouter maps URL paths to files under a directory: the first path
// segments that name a file are the script, the rest is PATH_INFO. A path
// with "." or ".." segments, or one whose file resolves outside the directory
// through a symlink, names nothing.
type dirRouter struct {
	root string // absolute, symlinks resolved
}

// newDirRouter returns a router for the files under dir.
func newDirRouter(dir string) (dirRouter, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dirRouter{}, err
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return dirRouter{}, err
	}
	info, err := os.Stat(root)
	if err != nil {
		return dirRouter{}, err
	}
	if !info.IsDir() {
		return dirRouter{}, errors.New(dir + " is not a directory")
	}
	return dirRouter{root: root}, nil
}

func (d dirRouter) route(urlPath string) (endpoint, error) {
	segments := splitPath(urlPath)
	if segments == nil {
		return endpoint{}, errNoEndpoint
	}
	file := d.root
	for i, seg := range segments {
		file = filepath.Join(file, seg)
		info, err := os.Stat(file)
		if err != nil {
			return endpoint{}, errNoEndpoint
		}
		if info.IsDir() {
			continue
		}
		if !info.Mode().IsRegular() {
			return endpoint{}, errNoEndpoint
		}
		real, err := filepath.EvalSymlinks(file)
		if err != nil || !within(d.root, real) {
			return endpoint{}, errNoEndpoint
		}
		e := endpoint{path: real, scriptName: "/" + strings.Join(segments[:i+1], "/")}
		if rest := segments[i+1:]; len(rest) > 0 {
			e.pathInfo = "/" + strings.Join(rest, "/")
		}
		return e, nil
	}
	return endpoint{}, errNoEndpoint
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
