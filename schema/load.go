package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// IgnoreFile names the files, in gitignore syntax, that list paths Load skips.
// Like .gitignore, one in a subdirectory applies below it.
const IgnoreFile = ".keelsonignore"

// maxSymlinkHops bounds how many symlinks in a row are followed.
const maxSymlinkHops = 16

// Option changes how Load reads a tree.
type Option func(*config)

type config struct {
	maxFileSize int64
	cache       *Cache
	shared      bool
	workers     int
	docs        []Doc
	skip        map[string]bool
	crds        []*apiextensionsv1.CustomResourceDefinition // WithCustomResources
}

// WithMaxFileSize refuses files larger than n bytes (DefaultMaxFileSize
// otherwise).
func WithMaxFileSize(n int64) Option { return func(c *config) { c.maxFileSize = n } }

// WithCache reuses the results of files whose content was validated before.
func WithCache(c *Cache) Option { return func(cfg *config) { cfg.cache = c } }

// WithShared makes Load return, for the files the cache answers, the
// cache's own objects instead of copies of them: a caller that reads most of
// the objects and changes few (a sync comparing a revision with the last one)
// saves a deep copy of each. The objects of such a Load must not be modified;
// DeepCopy one before changing it. Without WithCache it changes nothing.
func WithShared() Option { return func(c *config) { c.shared = true } }

// WithWorkers validates n files at a time (GOMAXPROCS otherwise).
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// Load reads every manifest under the roots of fsys (all of it when roots is
// empty; a root may be a file or a directory), skipping hidden directories and
// paths listed in .keelsonignore files. It returns the valid objects in file
// order and, as an ErrorList, every problem of every file; the error is nil
// only when all of them are valid. It returns ctx.Err() when cancelled.
func (s *Schema) Load(ctx context.Context, fsys fs.FS, roots []string, opts ...Option) ([]*Object, error) {
	cfg := config{maxFileSize: DefaultMaxFileSize, workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(&cfg)
	}
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var files []string
	var errs ErrorList
	for _, r := range roots {
		f, e := listFiles(fsys, path.Clean(r), cfg.skip)
		files, errs = append(files, f...), append(errs, e...)
	}
	type result struct {
		objs []*Object
		errs ErrorList
	}
	results := make([]result, len(files)+len(cfg.docs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(cfg.workers, 1) {
		wg.Go(func() {
			for i := range next {
				if i < len(files) {
					results[i].objs, results[i].errs = s.loadFile(fsys, files[i], &cfg)
				} else {
					results[i].objs, results[i].errs = s.loadDoc(cfg.docs[i-len(files)], &cfg)
				}
			}
		})
	}
feed:
	for i := range results {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var objs []*Object
	for _, r := range results {
		objs, errs = append(objs, r.objs...), append(errs, r.errs...)
	}
	objs, errs = s.resolveCustom(ctx, objs, errs, &cfg)
	errs.Sort()
	return objs, errs.Err()
}

func (s *Schema) loadFile(fsys fs.FS, name string, cfg *config) ([]*Object, ErrorList) {
	if info, err := fs.Stat(fsys, name); err == nil && info.Size() > cfg.maxFileSize {
		return nil, ErrorList{{File: name, Msg: fmt.Sprintf("file is %d bytes, over the limit of %d bytes (raise it with --max-file-size)", info.Size(), cfg.maxFileSize)}}
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, ErrorList{{File: name, Msg: "cannot read: " + unwrapPath(err)}}
	}
	if cfg.cache == nil {
		return s.validateFile(name, data, cfg.maxFileSize)
	}
	return cfg.cache.validate(name, data, cfg.shared, func() ([]*Object, ErrorList) {
		return s.validateFile(name, data, cfg.maxFileSize)
	})
}

func unwrapPath(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// listFiles walks root and returns the manifest files to read, sorted,
// leaving out the paths in skip.
func listFiles(fsys fs.FS, root string, skip map[string]bool) ([]string, ErrorList) {
	var files []string
	var errs ErrorList
	ign := newIgnorer(fsys)
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: "cannot read: " + unwrapPath(err)})
			return nil
		}
		if skip[p] || p != root && ign.ignored(p, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			ign.load(p)
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			isFile, err := checkSymlink(fsys, p)
			if err != nil {
				errs = append(errs, &Error{File: p, Msg: err.Error()})
				return nil
			}
			if !isFile {
				return nil // symlinked directories are not followed: no cycles
			}
		}
		if p == root || IsManifest(p) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, &Error{File: root, Msg: err.Error()})
	}
	sort.Strings(files)
	return files, errs
}

// checkSymlink follows a symlink inside fsys and reports whether it ends at a
// regular file. A link that leaves the tree is an error: the tree is what is
// in Git, and a link out of it would read files of the machine.
func checkSymlink(fsys fs.FS, p string) (bool, error) {
	cur := p
	for range maxSymlinkHops {
		target, err := fs.ReadLink(fsys, cur)
		if err != nil {
			return false, fmt.Errorf("cannot read symlink: %s", unwrapPath(err))
		}
		if path.IsAbs(target) {
			return false, fmt.Errorf("symlink points outside the tree (to %s): keelson reads only files inside it", target)
		}
		next := path.Join(path.Dir(cur), target)
		if next == ".." || strings.HasPrefix(next, "../") {
			return false, fmt.Errorf("symlink points outside the tree (to %s): keelson reads only files inside it", target)
		}
		info, err := fs.Lstat(fsys, next)
		if err != nil {
			return false, fmt.Errorf("broken symlink (to %s)", target)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			return info.Mode().IsRegular(), nil
		}
		cur = next
	}
	return false, fmt.Errorf("more than %d symlinks in a row", maxSymlinkHops)
}

// ignorer applies the .keelsonignore files met so far.
type ignorer struct {
	fsys     fs.FS
	patterns []gitignore.Pattern
	m        gitignore.Matcher
}

func newIgnorer(fsys fs.FS) *ignorer { return &ignorer{fsys: fsys, m: gitignore.NewMatcher(nil)} }

func (ig *ignorer) load(dir string) {
	data, err := fs.ReadFile(ig.fsys, path.Join(dir, IgnoreFile))
	if err != nil {
		return
	}
	var domain []string
	if dir != "." {
		domain = strings.Split(dir, "/")
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ig.patterns = append(ig.patterns, gitignore.ParsePattern(line, domain))
	}
	ig.m = gitignore.NewMatcher(ig.patterns)
}

func (ig *ignorer) ignored(p string, isDir bool) bool {
	return len(ig.patterns) > 0 && ig.m.Match(strings.Split(p, "/"), isDir)
}

// Ignorer applies the .keelsonignore files of a tree as Load does, for
// code that walks a tree before Load reads it (the renderers).
type Ignorer struct{ ig *ignorer }

// NewIgnorer returns an Ignorer of fsys with no ignore file read yet.
func NewIgnorer(fsys fs.FS) *Ignorer { return &Ignorer{ig: newIgnorer(fsys)} }

// Enter reads the ignore file of folder dir, which applies below it. A walk
// calls it for each folder it enters.
func (i *Ignorer) Enter(dir string) { i.ig.load(dir) }

// Ignored reports whether path p is ignored by the ignore files entered.
func (i *Ignorer) Ignored(p string, isDir bool) bool { return i.ig.ignored(p, isDir) }
