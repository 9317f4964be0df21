package render

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keelson/keelson/schema"
)

// Limits bound the rendering of one unit, so that a template that loops or
// a kustomization that grows without end is an error, not a stuck sync.
type Limits struct {
	// MaxOutputBytes bounds what one unit renders (DefaultMaxOutputBytes
	// when zero).
	MaxOutputBytes int64
	// Timeout bounds the time one unit takes (DefaultTimeout when zero).
	Timeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxOutputBytes = 64 << 20
	DefaultTimeout        = 30 * time.Second
)

func (l Limits) maxOutput() int64 {
	if l.MaxOutputBytes <= 0 {
		return DefaultMaxOutputBytes
	}
	return l.MaxOutputBytes
}

func (l Limits) timeout() time.Duration {
	if l.Timeout <= 0 {
		return DefaultTimeout
	}
	return l.Timeout
}

// Output is what Render made of a tree.
type Output struct {
	// Docs are the rendered objects, in unit order.
	Docs []schema.Doc
	// Skip lists the files and folders the renderers read: schema.Load
	// must not read them again as plain manifests (schema.WithSkip).
	Skip []string
	// Errors are the units' problems, each naming its file. A unit with
	// problems renders no objects.
	Errors schema.ErrorList
	// Units is how many units the tree has, and Rebuilt how many of them
	// were rendered rather than answered from the cache.
	Units, Rebuilt int
}

// Renderer renders trees. Its cache makes a unit whose inputs did not change
// cost a check of those inputs. It is safe for concurrent use.
type Renderer struct {
	// Limits bound each unit.
	Limits Limits
	// Charts fetches the charts of HelmCharts naming a chart repository
	// (spec.repoURL); nil refuses them. Set before the first Render.
	Charts ChartFetcher

	mu    sync.Mutex
	cache map[unit][]*cached // newest first, at most keptVersions
	split splitCache
}

// keptVersions is how many renderings of one unit the cache keeps: two,
// so that a plan, which renders a base and a head tree in turn, finds both.
const keptVersions = 2

// maxUnits bounds how many units the cache remembers.
const maxUnits = 10_000

// New returns a Renderer with limits lim.
func New(lim Limits) *Renderer { return &Renderer{Limits: lim, cache: map[unit][]*cached{}} }

// unitKind says which engine renders a unit.
type unitKind string

// The kinds of units.
const (
	kindKustomize unitKind = "kustomization"
	kindHelm      unitKind = "HelmChart"
	kindCUE       unitKind = "CUE package"
)

// unit is one thing to render: a kustomization's folder, a file holding
// HelmChart objects, a folder of a CUE package.
type unit struct {
	kind  unitKind
	entry string // slash path from the tree's root
}

// engine renders one unit. t records every path it reads; the docs of a
// unit with problems are dropped.
type engine func(ctx context.Context, t *Tree, u unit, lim Limits) ([]schema.Doc, schema.ErrorList)

// engines are registered by the files that implement them.
var engines = map[unitKind]engine{}

// Render renders every unit under roots of fsys (all of it when roots is
// empty). It never fails as a whole: problems are in Output.Errors, and the
// context's end is one of them.
func (r *Renderer) Render(ctx context.Context, fsys fs.FS, roots []string) *Output {
	if len(roots) == 0 {
		roots = []string{"."}
	}
	out := &Output{}
	var units []unit
	for _, root := range roots {
		u, skip, errs := findUnits(fsys, path.Clean(root))
		units = append(units, u...)
		out.Skip = append(out.Skip, skip...)
		out.Errors = append(out.Errors, errs...)
	}
	out.Units = len(units)
	results := make([]*cached, len(units))
	bases := findBases(fsys, units)
	var wg sync.WaitGroup
	for i, u := range units {
		if bases[i] {
			continue // a base or component: its objects come through its users
		}
		wg.Go(func() {
			var rebuilt bool
			results[i], rebuilt = r.renderUnit(ctx, fsys, u)
			if rebuilt {
				r.mu.Lock()
				out.Rebuilt++
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, c := range results {
		if c != nil {
			out.Docs = append(out.Docs, c.docs...)
			out.Errors = append(out.Errors, c.errs...)
		}
	}
	for i, c := range results {
		if c == nil {
			continue
		}
		for p, d := range c.inputs {
			if d != "" && !isDirInput(p) && !isStatKey(p) && !isManifestEntry(units[i], p) {
				out.Skip = append(out.Skip, p)
			}
		}
	}
	sort.Strings(out.Skip)
	out.Skip = slices.Compact(out.Skip)
	out.Errors.Sort()
	return out
}

// findBases marks the kustomizations another one of the tree reads (a
// base, a component): their objects come through the kustomizations that
// use them, so building them on their own would cost a build of each base
// at every change, for output thrown away. What each reads is found from
// the kustomization files alone, without building. Two that read each other
// are a cycle, not a base and its user: both are built, so that the cycle's
// error is reported.
func findBases(fsys fs.FS, units []unit) []bool {
	t := newTree(fsys)
	reads := make([]map[string]bool, len(units))
	for i, u := range units {
		if u.kind == kindKustomize {
			reads[i] = kustomizationsRead(t, u)
		}
	}
	base := make([]bool, len(units))
	for i, u := range units {
		for j := range units {
			if i != j && reads[i] != nil && reads[j] != nil &&
				readsKustomization(reads[j], u.entry) && !readsKustomization(reads[i], units[j].entry) {
				base[i] = true
				break
			}
		}
	}
	return base
}

// readsKustomization reports whether the set of kustomization files read
// holds the one of folder dir.
func readsKustomization(read map[string]bool, dir string) bool {
	for _, name := range kustomizationNames {
		if read[path.Join(dir, name)] {
			return true
		}
	}
	return false
}

// isManifestEntry reports whether p is u's own file and a manifest: a
// file of HelmCharts is read by the engine and stored as it stands.
func isManifestEntry(u unit, p string) bool { return u.kind == kindHelm && p == u.entry }

func isDirInput(p string) bool { return strings.HasSuffix(p, "/") }

// renderUnit answers u from the cache when none of its inputs changed, and
// renders it otherwise.
func (r *Renderer) renderUnit(ctx context.Context, fsys fs.FS, u unit) (*cached, bool) {
	key := u // a unit is its own cache key: its kind and entry
	r.mu.Lock()
	versions := slices.Clone(r.cache[key])
	r.mu.Unlock()
	for _, c := range versions {
		if c.valid(ctx, fsys, r.Charts) {
			return c, false
		}
	}
	c := r.build(ctx, fsys, u)
	if ctx.Err() != nil {
		return c, true // ended by the caller: not an answer to keep
	}
	r.mu.Lock()
	if len(r.cache) >= maxUnits {
		clear(r.cache) // bounded and simple; the next Render refills it
	}
	kept := append([]*cached{c}, r.cache[key]...)
	r.cache[key] = kept[:min(len(kept), keptVersions)]
	r.mu.Unlock()
	return c, true
}

func (r *Renderer) build(ctx context.Context, fsys fs.FS, u unit) *cached {
	t := newTree(fsys)
	t.fetcher = r.Charts
	t.split = &r.split
	eng, ok := engines[u.kind]
	if !ok {
		return &cached{errs: schema.ErrorList{{File: u.entry, Msg: fmt.Sprintf("keelson cannot render a %s yet", u.kind)}}}
	}
	ctx, cancel := context.WithTimeout(ctx, r.Limits.timeout())
	defer cancel()
	docs, errs := runEngine(ctx, eng, t, u, r.Limits)
	if len(errs) > 0 {
		docs = nil
	}
	return &cached{docs: docs, errs: errs, inputs: t.digests(), charts: t.chartRefs()}
}

// runEngine runs eng, turning a panic of the libraries it drives (kustomize,
// Helm, CUE) on input nobody foresaw into the unit's error: a repository
// must never bring a sync process down.
func runEngine(ctx context.Context, eng engine, t *Tree, u unit, lim Limits) (docs []schema.Doc, errs schema.ErrorList) {
	defer func() {
		if p := recover(); p != nil {
			docs, errs = nil, schema.ErrorList{{File: u.entry, Msg: fmt.Sprintf("rendering the %s failed inside the renderer: %v", u.kind, p)}}
		}
	}()
	return eng(ctx, t, u, lim)
}
