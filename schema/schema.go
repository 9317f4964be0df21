package schema

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
)

// cueFiles is the CUE module: generated types under cue.mod/gen and the
// hand-written kinds package that narrows them.
//
//go:embed all:cue
var cueFiles embed.FS

// cueRoot is the virtual directory the embedded module is loaded from. The CUE
// loader cannot read cue.mod/gen through load.Config.FS, so the files are handed
// to it as an overlay under an absolute path that does not exist on disk.
const cueRoot = "/keelson-schema"

// Schema is the compiled set of definitions, one per supported kind. Build it
// once with New (or use Default); it is safe for concurrent use.
type Schema struct {
	ctx   *cue.Context
	kinds map[gvk]*kindInfo
	// noFast turns the fast path off, for tests that compare it with
	// unification.
	noFast bool
}

type gvk struct{ apiVersion, kind string }

var (
	defaultOnce   sync.Once
	defaultSchema *Schema
	defaultErr    error
)

// Default returns the process-wide Schema, built on first use.
func Default() (*Schema, error) {
	defaultOnce.Do(func() { defaultSchema, defaultErr = New() })
	return defaultSchema, defaultErr
}

// New compiles the embedded definitions. It fails only when the embedded CUE is
// broken, which the package tests rule out.
func New() (*Schema, error) {
	overlay := map[string]load.Source{}
	err := fs.WalkDir(cueFiles, "cue", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := cueFiles.ReadFile(p)
		if err != nil {
			return err
		}
		overlay[path.Join(cueRoot, p[len("cue/"):])] = load.FromBytes(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("schema: read embedded definitions: %w", err)
	}
	insts := load.Instances([]string{"./kinds"}, &load.Config{Dir: cueRoot, Overlay: overlay})
	if len(insts) != 1 || insts[0].Err != nil {
		return nil, fmt.Errorf("schema: load embedded definitions: %v", insts[0].Err)
	}
	ctx := cuecontext.New()
	pkg := ctx.BuildInstance(insts[0])
	if err := pkg.Err(); err != nil {
		return nil, fmt.Errorf("schema: build embedded definitions: %w", err)
	}
	s := &Schema{ctx: ctx, kinds: map[gvk]*kindInfo{}}
	for i := range supported {
		k := &supported[i]
		def := pkg.LookupPath(cue.ParsePath("#" + k.kind))
		if err := def.Err(); err != nil {
			return nil, fmt.Errorf("schema: definition #%s: %w", k.kind, err)
		}
		s.kinds[gvk{k.apiVersion, k.kind}] = &kindInfo{apiVersion: k.apiVersion, kind: k.kind,
			namespaced: k.namespaced, newObj: k.newObj, def: def}
	}
	return s, nil
}

// Kinds lists the supported kinds as "apiVersion/Kind", sorted.
func (s *Schema) Kinds() []string {
	out := make([]string, 0, len(s.kinds))
	for g := range s.kinds {
		out = append(out, g.apiVersion+"/"+g.kind)
	}
	sort.Strings(out)
	return out
}
