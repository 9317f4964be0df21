package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"cuelang.org/go/cue/load"
	"cuelang.org/go/mod/modfile"
	"cuelang.org/go/mod/module"

	"github.com/keelson/keelson/schema"
)

// cueRoot is where the loader sees the tree: a folder that does not exist
// on disk, so that the loader finds nothing but the overlay it is given
// (the loader reads the disk under its overlay). Its fs.FS mode would read
// through the Tree alone, but in CUE v0.17.1 that mode cannot resolve the
// cue.mod/gen, usr and pkg packages people keep. A variable for tests.
var cueRoot = "/keelson-render-cue"

// checkCUERoot refuses to load when something is at cueRoot on this
// machine: its files would be taken as the repository's.
func checkCUERoot() error {
	if _, err := os.Lstat(cueRoot); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keelson evaluates CUE under %s, which must not exist on this machine, and it does (%v): "+
			"files there would be read as the repository's; remove it", cueRoot, err)
	}
	return nil
}

// cueInputs gathers, through t, the files the loader needs for the package
// in dir: the module's metadata, the folder's .cue files and those of its
// parents up to the module root (CUE merges a package with the same
// package's files above it), and the same for every package they import,
// found as the loader finds them: in the module, or under cue.mod/gen, usr
// and pkg. Gathering only what is imported keeps the cache key to the
// files the package depends on.
type cueInputs struct {
	t       *Tree
	modRoot string // "" without a module
	module  string // the module's path, without its major version
	overlay map[string]load.Source
	seen    map[string]bool // folders gathered
	keelson map[string]bool // packages of keelson's definitions added
	errs    schema.ErrorList
}

func gatherCUE(t *Tree, dir string) *cueInputs {
	in := &cueInputs{t: t, overlay: map[string]load.Source{}, seen: map[string]bool{}}
	in.findModule(dir)
	in.addPackage(dir, in.modRoot)
	return in
}

// config is the loader's configuration for the package in dir: the module
// root fixed (the loader must not look for one above the tree), no
// registry, files only from the overlay.
func (in *cueInputs) config(dir string) *load.Config {
	root := dir
	if in.modRoot != "" {
		root = in.modRoot
	}
	return &load.Config{
		Dir:        cueAbs(dir),
		ModuleRoot: cueAbs(root),
		Package:    "*",
		Overlay:    in.overlay,
		Registry:   offlineRegistry{},
		Env:        []string{},
	}
}

func cueAbs(p string) string { return path.Join(cueRoot, p) }

// findModule looks for the nearest cue.mod above dir, up to the tree's
// root, and reads its module file.
func (in *cueInputs) findModule(dir string) {
	for d := dir; ; d = path.Dir(d) {
		if info, err := in.t.Stat(path.Join(d, cueModule)); err == nil && info.IsDir() {
			in.modRoot = d
			break
		}
		if d == "." {
			return
		}
	}
	for _, name := range []string{"module.cue", "local-module.cue"} {
		p := path.Join(in.modRoot, cueModule, name)
		data, err := in.t.ReadFile(p)
		if err != nil {
			continue // the loader says what is missing
		}
		in.overlay[cueAbs(p)] = load.FromBytes(data)
		if name == "module.cue" {
			if f, err := modfile.ParseNonStrict(data, p); err == nil {
				in.module, _, _ = module.SplitPathVersion(f.QualifiedModule())
				if in.module == "" {
					in.module = f.Module
				}
			}
		}
	}
}

// addPackage adds the .cue files of dir and of its parents up to top, and
// then the packages they import.
func (in *cueInputs) addPackage(dir, top string) {
	var imports []string
	for d := dir; ; d = path.Dir(d) {
		if !in.seen[d] {
			in.seen[d] = true
			imports = append(imports, in.addFolder(d)...)
		}
		if d == top || d == "." || top == "" {
			break
		}
	}
	for _, imp := range imports {
		in.addImport(imp)
	}
}

// addFolder adds the .cue files of one folder and returns their imports.
func (in *cueInputs) addFolder(dir string) []string {
	es, err := in.t.ReadDir(dir)
	if err != nil {
		return nil
	}
	var imports []string
	for _, e := range es {
		name := path.Join(dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".cue") || e.IsDir() {
			continue
		}
		data, err := in.t.ReadFile(name)
		if err != nil {
			// A symlink out of the repository, or to nothing: the package
			// would not be what the repository holds.
			in.errs = append(in.errs, &schema.Error{File: name, Msg: fmt.Sprintf("cannot read this file of the CUE package: %v", err)})
			continue
		}
		in.overlay[cueAbs(name)] = load.FromBytes(data)
		imports = append(imports, importsOf(name, data)...)
	}
	return imports
}

// addImport adds the package at import path p when the repository has it:
// in the module, or under cue.mod/gen, usr or pkg. The standard library is
// built in; anything else is left for the loader to report.
func (in *cueInputs) addImport(p string) {
	if in.modRoot == "" || !isNonStd(p) {
		return
	}
	if in.module != "" && (p == in.module || strings.HasPrefix(p, in.module+"/")) {
		in.addPackage(path.Join(in.modRoot, strings.TrimPrefix(p, in.module)), in.modRoot)
		return
	}
	found := false
	for _, sub := range []string{"gen", "usr", "pkg"} {
		base := path.Join(in.modRoot, cueModule, sub)
		dir := path.Join(base, p)
		if info, err := in.t.Stat(dir); err == nil && info.IsDir() {
			in.addPackage(dir, base)
			found = true
		}
	}
	if !found && (p == keelsonModule || strings.HasPrefix(p, keelsonModule+"/")) {
		in.addKeelson(p)
	}
}

// offlineRegistry is the CUE module registry keelson gives the loader: it
// has no module, so a module.cue with dependencies is a clear error rather
// than a download from the network.
type offlineRegistry struct{}

func (offlineRegistry) ModFile(_ context.Context, mv module.Version) (*modfile.File, error) {
	return nil, errNoRegistry(mv.String())
}

func (offlineRegistry) Fetch(_ context.Context, mv module.Version) (module.SourceLoc, error) {
	return module.SourceLoc{}, errNoRegistry(mv.String())
}

func (offlineRegistry) ModuleVersions(_ context.Context, mpath string) ([]string, error) {
	return nil, errNoRegistry(mpath)
}

func errNoRegistry(mod string) error {
	return fmt.Errorf("CUE module %s is not in the repository: keelson fetches no modules from a registry; "+
		"keep its packages under cue.mod/pkg (or cue.mod/gen) instead of a dependency in cue.mod/module.cue", mod)
}
