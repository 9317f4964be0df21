package render

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/keelson/keelson/schema"
)

func init() { engines[kindKustomize] = renderKustomization }

// kustomizeOptions are krusty's options for every build: no plugins, no
// exec or container functions, no Helm inflation (what a kustomization may
// not do in keelson is refused before by kustChecker too).
//
// Load restrictions are none, as Flux builds: a kustomization may read a
// file of another folder of the repository (a patch shared by overlays),
// which kustomize's default (root only) refuses. That default protects a
// person's disk from a kustomization reading their home folder; keelson's
// tree already refuses every path outside the repository, so the
// repository is the boundary, and a repository that builds with
// `kustomize build` builds here the same.
func kustomizeOptions() *krusty.Options {
	o := krusty.MakeDefaultOptions()
	o.LoadRestrictions = types.LoadRestrictionsNone
	o.PluginConfig = types.DisabledPluginConfig()
	return o
}

// renderKustomization builds the kustomization of folder u.entry as
// `kustomize build` does, on the tree in memory.
func renderKustomization(ctx context.Context, t *Tree, u unit, lim Limits) ([]schema.Doc, schema.ErrorList) {
	c := &kustChecker{t: t, seen: map[string]bool{}}
	c.check(u.entry, "")
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	if c.component {
		return nil, nil // its objects come through the kustomizations using it
	}
	kfile := findKustomization(t, u.entry)
	if kfile == "" {
		return nil, schema.ErrorList{{File: u.entry, Msg: "no kustomization file in the folder"}}
	}
	split := t.split
	if split == nil {
		split = &splitCache{}
	}
	p := planSplit(t, u.entry, kfile, split)
	if p != nil {
		docs, ok := p.build(ctx, t, lim, split, !c.origins)
		if ok {
			return docs, nil
		}
	}
	fsys := &treeFS{ctx: ctx, t: t}
	if !c.origins {
		fsys.edit = func(name string, data []byte) ([]byte, error) {
			if name != kfile {
				return data, nil
			}
			return askOrigins(data), nil
		}
	}
	m, err := buildInTime(ctx, fsys, u.entry, lim)
	if err != nil {
		return nil, schema.ErrorList{{File: kfile, Msg: cleanMessage(err.Error())}}
	}
	return kustomizeDocs(t, m, u.entry, kfile, !c.origins, lim)
}

// buildInTime runs krusty, which takes no context, in a goroutine, and
// gives up at ctx's end. What keeps running then is that goroutine alone:
// it fails at its next read of the tree (treeFS refuses reads once ctx has
// ended), and a transformer busy with what it already read runs to its end
// before the goroutine returns and its result is dropped.
func buildInTime(ctx context.Context, fsys *treeFS, entry string, lim Limits) (resmap.ResMap, error) {
	type result struct {
		m   resmap.ResMap
		err error
	}
	done := make(chan result, 1) // the goroutine never blocks on a reader gone
	kustomizeRunning.Add(1)
	go func() {
		defer kustomizeRunning.Done()
		kustomizeBuilds.Add(1)
		defer func() {
			if r := recover(); r != nil {
				done <- result{err: fmt.Errorf("kustomize failed: %v", r)}
			}
		}()
		m, err := krusty.MakeKustomizer(kustomizeOptions()).Run(fsys, absPath(entry))
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		if r.err == nil || ctx.Err() == nil {
			return r.m, r.err
		}
		// Failed at a read refused for the deadline: say so plainly.
	case <-ctx.Done():
	}
	return nil, fmt.Errorf("not built within the limit of %s: %w", lim.timeout(), ctx.Err())
}

// kustomizeRunning counts the builds under way, including those given up
// at their deadline, so that a test can wait for them to end.
var kustomizeRunning sync.WaitGroup

// askOrigins adds originAnnotations to a kustomization's buildMetadata, so
// that each object built says which file it came from. A file that does not
// parse is left as it is, for krusty to report.
func askOrigins(data []byte) []byte {
	node, err := kyaml.Parse(string(data))
	if err != nil || node.YNode().Kind != kyaml.MappingNode {
		return data
	}
	seq, err := node.Pipe(kyaml.LookupCreate(kyaml.SequenceNode, "buildMetadata"))
	if err != nil || seq == nil {
		return data
	}
	seq.YNode().Content = append(seq.YNode().Content, kyaml.NewScalarRNode(types.OriginAnnotations).YNode())
	s, err := node.String()
	if err != nil {
		return data
	}
	return []byte(s)
}

// kustomizeDocs turns a build's objects into Docs pointing at the files
// they came from, within the output limit.
func kustomizeDocs(t *Tree, m resmap.ResMap, entry, kfile string, stripOrigins bool, lim Limits) ([]schema.Doc, schema.ErrorList) {
	via := "kustomization " + kfile
	var docs []schema.Doc
	var size int64
	files := map[string]*fileDocs{}
	for _, r := range m.Resources() {
		file, line := kfile, 0
		if from, resource := originOf(r); from != "" {
			if p, err := Join(entry, from); err == nil {
				file = p
				if resource {
					line = resourceLine(t, files, file, r.GetKind())
				}
			}
		}
		if stripOrigins {
			if err := r.SetOrigin(nil); err != nil {
				return nil, schema.ErrorList{{File: kfile, Msg: fmt.Sprintf("%s %s: %v", r.GetKind(), r.GetName(), err)}}
			}
		}
		data, err := r.AsYAML()
		if err != nil {
			return nil, schema.ErrorList{{File: kfile, Msg: fmt.Sprintf("%s %s: %v", r.GetKind(), r.GetName(), err)}}
		}
		if size += int64(len(data)); size > lim.maxOutput() {
			return nil, schema.ErrorList{{File: kfile, Msg: fmt.Sprintf(
				"renders more than the limit of %d bytes (at %s %s)", lim.maxOutput(), r.GetKind(), r.GetName())}}
		}
		docs = append(docs, schema.Doc{File: file, Line: line, Via: via, Data: data})
	}
	return docs, nil
}

// originOf is the file r came from, relative to the entry, as its origin
// annotation says: the resource file, or the kustomization of a generator
// (resource is false then).
func originOf(r *resource.Resource) (from string, resource bool) {
	origin, err := r.GetOrigin()
	if err != nil || origin == nil || origin.Repo != "" {
		return "", false
	}
	if origin.ConfiguredIn != "" {
		return origin.ConfiguredIn, false
	}
	return origin.Path, !slices.Contains(kustomizationNames, path.Base(origin.Path))
}

// resourceLine is the line in file of the next object built from it.
func resourceLine(t *Tree, files map[string]*fileDocs, file, kind string) int {
	f, ok := files[file]
	if !ok {
		if data, err := t.ReadFile(file); err == nil {
			f = parseDocs(data)
		}
		files[file] = f
	}
	return f.lineOf(kind)
}

// kustomizationsRead returns the kustomization files a build of u reads,
// its own included, from the kustomization files alone: what a base or a
// component is, known without building.
func kustomizationsRead(t *Tree, u unit) map[string]bool {
	c := &kustChecker{t: t, seen: map[string]bool{}}
	c.check(u.entry, "")
	return c.seen
}
