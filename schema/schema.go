package schema

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
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
	kinds []string
	// engines holds compiled definitions not in use. CUE evaluates
	// definitions lazily and, in v0.17, not race-free when one value is
	// looked into from several goroutines, so each goroutine validating a
	// file takes an engine of its own; there are at most GOMAXPROCS.
	engines chan *engine
	// made counts the engines built; it is guarded by mu.
	mu   sync.Mutex
	made int
	// noFast turns the fast path off, for tests that compare it with
	// unification.
	noFast bool
}

// engine is one compiled copy of the definitions, used by one goroutine at
// a time.
type engine struct {
	ctx    *cue.Context
	kinds  map[gvk]*kindInfo
	noFast bool
	custom map[customDefKey]cue.Value // compiled CRD schemas (custom_def.go)
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
	e, err := newEngine()
	if err != nil {
		return nil, err
	}
	s := &Schema{kinds: kindNames(e.kinds), engines: make(chan *engine, runtime.GOMAXPROCS(0)), made: 1}
	s.engines <- e
	return s, nil
}

// get takes an engine, building one when none is free and fewer than
// GOMAXPROCS exist, else waiting for one.
func (s *Schema) get() (*engine, error) {
	select {
	case e := <-s.engines:
		e.noFast = s.noFast
		return e, nil
	default:
	}
	s.mu.Lock()
	build := s.made < cap(s.engines)
	if build {
		s.made++
	}
	s.mu.Unlock()
	if !build {
		e := <-s.engines
		e.noFast = s.noFast
		return e, nil
	}
	e, err := newEngine()
	if err != nil {
		s.mu.Lock()
		s.made--
		s.mu.Unlock()
		return nil, err
	}
	e.noFast = s.noFast
	return e, nil
}

func (s *Schema) put(e *engine) { s.engines <- e }

func newEngine() (*engine, error) {
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
	e := &engine{ctx: ctx, kinds: map[gvk]*kindInfo{}}
	for i := range supported {
		k := &supported[i]
		def := pkg.LookupPath(cue.ParsePath("#" + k.kind))
		if err := def.Err(); err != nil {
			return nil, fmt.Errorf("schema: definition #%s: %w", k.kind, err)
		}
		e.kinds[gvk{k.apiVersion, k.kind}] = &kindInfo{apiVersion: k.apiVersion, kind: k.kind,
			namespaced: k.namespaced, newObj: k.newObj, def: def}
	}
	return e, nil
}

// Kinds lists the supported kinds as "apiVersion/Kind", sorted.
func (s *Schema) Kinds() []string { return slices.Clone(s.kinds) }

func kindNames(kinds map[gvk]*kindInfo) []string {
	out := make([]string, 0, len(kinds))
	for g := range kinds {
		out = append(out, g.apiVersion+"/"+g.kind)
	}
	sort.Strings(out)
	return out
}
