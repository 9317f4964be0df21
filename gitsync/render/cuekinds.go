package render

import (
	"io/fs"
	"path"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"

	"github.com/keelson/keelson/schema"
)

// keelsonModule is the module of keelson's own definitions. A package in Git
// imports keelson.dev/schema/kinds to write kinds.#Deployment & {…}; unless
// the repository keeps a package of that path itself, keelson serves it from
// the definitions it validates with, so that both agree.
const keelsonModule = "keelson.dev/schema"

// addKeelson adds keelson's package p, and what it imports, to the overlay
// as packages of the repository's cue.mod/pkg. An import of it that the
// repository has under cue.mod (its own k8s.io/api types) is the
// repository's: keelson adds only what is missing, rather than a second copy
// that CUE would merge with the first.
func (in *cueInputs) addKeelson(p string) {
	if in.keelson[p] {
		return
	}
	if in.keelson == nil {
		in.keelson = map[string]bool{}
	}
	in.keelson[p] = true
	mod := schema.CUEModule()
	dir := "cue.mod/gen/" + p
	if rel, ok := strings.CutPrefix(p, keelsonModule); ok {
		dir = path.Join(".", strings.TrimPrefix(rel, "/"))
	}
	es, err := fs.ReadDir(mod, dir)
	if err != nil {
		return // the loader reports the package as not found
	}
	for _, e := range es {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".cue") {
			continue
		}
		data, err := fs.ReadFile(mod, path.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		in.overlay[cueAbs(path.Join(in.modRoot, cueModule, "pkg", p, e.Name()))] = load.FromBytes(data)
		for _, imp := range importsOf(e.Name(), data) {
			if in.hasLocal(imp) {
				in.addImport(imp)
			} else if isNonStd(imp) {
				in.addKeelson(imp)
			}
		}
	}
}

// hasLocal reports whether the repository's module keeps package p under
// cue.mod/gen, usr or pkg.
func (in *cueInputs) hasLocal(p string) bool {
	if in.modRoot == "" {
		return false
	}
	for _, sub := range []string{"gen", "usr", "pkg"} {
		if info, err := in.t.Stat(path.Join(in.modRoot, cueModule, sub, p)); err == nil && info.IsDir() {
			return true
		}
	}
	return false
}

// isNonStd tells an import of a module (its first element has a dot) from
// one of CUE's standard library, which is built in.
func isNonStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return strings.Contains(first, ".")
}

// importsOf lists the import paths of a CUE file, without qualifiers; a
// file that does not parse has none here, and the loader says why.
func importsOf(name string, data []byte) []string {
	f, err := parser.ParseFile(name, data, parser.ImportsOnly)
	if err != nil {
		return nil
	}
	var out []string
	for spec := range f.ImportSpecs() {
		if spec.Path == nil {
			continue
		}
		if v, err := strconv.Unquote(spec.Path.Value); err == nil {
			out = append(out, ast.ParseImportPath(v).Path)
		}
	}
	return out
}
