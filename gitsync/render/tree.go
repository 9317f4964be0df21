package render

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/keelson/keelson/schema"
)

// ErrOutside is the error of a path that leaves the tree: a relative path
// with too many "..", an absolute path, a symlink pointing out.
var ErrOutside = errors.New("outside the repository: keelson renders only from files inside it")

// maxHops bounds the symlinks followed in resolving one path.
const maxHops = 16

// Tree is the tree a unit is rendered from, as its engine reads it. It
// follows symlinks only inside the tree, and records every path read with
// a digest of what was there, which is the unit's cache key. Safe for
// concurrent use.
type Tree struct {
	fsys    fs.FS
	fetcher ChartFetcher // nil: no chart repositories
	split   *splitCache  // nil: split builds keep nothing

	mu     sync.Mutex
	inputs map[string]string // path -> digest; folders end in "/"; "" is absent
	charts map[ChartRequest]ChartRef
}

func newTree(fsys fs.FS) *Tree { return &Tree{fsys: fsys, inputs: map[string]string{}} }

// Join joins a path written in a file of folder dir (a resource of a
// kustomization, a values file of a HelmChart) to dir, refusing paths that
// leave the tree.
func Join(dir, rel string) (string, error) {
	if path.IsAbs(rel) || strings.HasPrefix(rel, `\`) {
		return "", fmt.Errorf("%s: %w", rel, ErrOutside)
	}
	p := path.Join(dir, rel)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%s: %w", rel, ErrOutside)
	}
	return p, nil
}

// ReadFile reads a file of the tree (a clean slash path from its root).
func (t *Tree) ReadFile(name string) ([]byte, error) {
	real, err := t.resolve(name)
	if err != nil {
		t.record(name, "")
		return nil, err
	}
	data, err := fs.ReadFile(t.fsys, real)
	if err != nil {
		t.record(name, "")
		return nil, err
	}
	t.record(name, digest(data))
	return data, nil
}

// ReadDir lists a folder of the tree.
func (t *Tree) ReadDir(name string) ([]fs.DirEntry, error) {
	real, err := t.resolve(name)
	if err != nil {
		t.record(dirKey(name), "")
		return nil, err
	}
	es, err := fs.ReadDir(t.fsys, real)
	if err != nil {
		t.record(dirKey(name), "")
		return nil, err
	}
	t.record(dirKey(name), listing(es))
	return es, nil
}

// Stat tells what is at name, following symlinks inside the tree; a name
// probed and absent is recorded too, since its appearing changes a build.
func (t *Tree) Stat(name string) (fs.FileInfo, error) {
	real, err := t.resolve(name)
	if err == nil {
		var info fs.FileInfo
		if info, err = fs.Stat(t.fsys, real); err == nil {
			t.record(statKey(name), statDigest(info))
			return info, nil
		}
	}
	t.record(statKey(name), "")
	return nil, err
}

func dirKey(name string) string  { return strings.TrimSuffix(name, "/") + "/" }
func statKey(name string) string { return strings.TrimSuffix(name, "/") + "/?" }

func isStatKey(p string) bool { return strings.HasSuffix(p, "/?") }

func (t *Tree) record(key, d string) {
	t.mu.Lock()
	t.inputs[key] = d
	t.mu.Unlock()
}

func (t *Tree) digests() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.inputs))
	for k, v := range t.inputs {
		out[k] = v
	}
	return out
}

// digestOf reads key again, for checking a cached unit.
func (t *Tree) digestOf(key string) string {
	switch {
	case isStatKey(key):
		info, err := t.Stat(strings.TrimSuffix(key, "/?"))
		if err != nil {
			return ""
		}
		return statDigest(info)
	case isDirInput(key):
		es, err := t.ReadDir(strings.TrimSuffix(key, "/"))
		if err != nil {
			return ""
		}
		return listing(es)
	}
	data, err := t.ReadFile(key)
	if err != nil {
		return ""
	}
	return digest(data)
}

// resolve follows the symlinks on name's path, refusing those that leave
// the tree, and returns the path to read.
func (t *Tree) resolve(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", fmt.Errorf("%s: %w", name, ErrOutside)
	}
	if name == "." {
		return name, nil
	}
	parts := strings.Split(name, "/")
	cur := "."
	hops := 0
	for i := 0; i < len(parts); i++ {
		next := path.Join(cur, parts[i])
		info, err := fs.Lstat(t.fsys, next)
		if err != nil || info.Mode()&fs.ModeSymlink == 0 {
			cur = next // missing paths are the reader's to report
			continue
		}
		if hops++; hops > maxHops {
			return "", fmt.Errorf("%s: more than %d symlinks", name, maxHops)
		}
		target, err := fs.ReadLink(t.fsys, next)
		if err != nil {
			return "", fmt.Errorf("%s: cannot read symlink: %w", next, err)
		}
		resolved, err := Join(cur, target)
		if err != nil {
			return "", fmt.Errorf("symlink %s points to %s, %w", next, target, ErrOutside)
		}
		rest := append(strings.Split(resolved, "/"), parts[i+1:]...)
		parts, i, cur = rest, -1, "."
	}
	return cur, nil
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "f" + string(sum[:])
}

func listing(es []fs.DirEntry) string {
	h := sha256.New()
	for _, e := range es {
		fmt.Fprintf(h, "%s\x00%d\x00", e.Name(), e.Type())
	}
	return "d" + string(h.Sum(nil))
}

func statDigest(info fs.FileInfo) string {
	if info.IsDir() {
		return "dir"
	}
	return "file"
}

// cached is one unit's rendering with what it read.
type cached struct {
	docs   []schema.Doc
	errs   schema.ErrorList
	inputs map[string]string
	charts map[ChartRequest]ChartRef // charts of repositories, by request
}

// valid reports whether every input of c reads as it did, and every chart
// of a repository resolves as it did.
func (c *cached) valid(ctx context.Context, fsys fs.FS, f ChartFetcher) bool {
	if !chartsValid(ctx, f, c.charts) {
		return false
	}
	t := newTree(fsys)
	for key, d := range c.inputs {
		if t.digestOf(key) != d {
			return false
		}
	}
	return true
}
