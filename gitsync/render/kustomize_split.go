package render

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"sigs.k8s.io/kustomize/api/types"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"github.com/keelson/keelson/schema"
)

// A split build. krusty's build costs about a millisecond an object and
// grows faster than the objects (its resource map finds an object by a scan
// of all of them), so an overlay of a thousand objects takes seconds, at
// every change of any one of its files. Most large kustomizations are a
// long list of resource files under a few transformers that each change
// one object at a time (a name prefix, a namespace, labels, images,
// targeted patches). Such a build is the same as building the files in
// parts and putting the parts' objects back in the order of one build, as
// long as every reference between objects stays inside a part: kustomize's
// name references rewrite a field that holds another object's name, so two
// files where one holds a name the other defines are always in the same
// part. Each part is then cached on its own inputs, and a one-file change
// builds one part.
//
// A patch without a target names the objects it patches: their files are
// joined, and the patch goes in their part alone.
//
// Anything else makes the build whole: a field outside the list above
// (generators, replacements, components, replicas, sort options,
// transformer annotations, ...), a patch that may rename, a base read
// twice, a part that fails (the whole build then says what kustomize
// says).

// splitObjects is how many objects a part holds about; a build of fewer
// than two parts' worth is not split.
var splitObjects = 24

// splitFields are the kustomization fields a split build allows: each acts
// on one object at a time, apart from the name references kept in a part.
var splitFields = map[string]bool{
	"apiVersion": true, "kind": true, "metadata": true,
	"resources": true, "namespace": true, "namePrefix": true, "nameSuffix": true,
	"commonLabels": true, "labels": true, "commonAnnotations": true,
	"images": true, "patches": true, "patchesStrategicMerge": true, "buildMetadata": true,
}

// referencedKinds are the kinds whose names kustomize's name references
// rewrite in other objects (its built-in nameReference configuration, which
// a split build leaves as it is: "configurations" is not allowed). A test
// reads that configuration from the kustomize module to keep them equal.
var referencedKinds = map[string]bool{
	"Deployment": true, "ReplicationController": true, "ReplicaSet": true, "StatefulSet": true,
	"ConfigMap": true, "Secret": true, "Service": true, "Role": true, "ClusterRole": true,
	"ServiceAccount": true, "PersistentVolumeClaim": true, "PersistentVolume": true,
	"StorageClass": true, "PriorityClass": true, "IngressClass": true, "ValidatingAdmissionPolicy": true,
}

// kustomizeBuilds counts krusty runs, for tests of what a change rebuilds.
var kustomizeBuilds atomic.Int64

// splitCache keeps the parts of split builds and what each resource file
// holds, across the Renders of one Renderer.
type splitCache struct {
	mu    sync.Mutex
	parts map[string][]*cached // by entry and the part's files; newest first
	scans map[string]*fileScan // by file digest
}

// maxSplitEntries bounds each map of a splitCache.
const maxSplitEntries = 50_000

func (c *splitCache) scan(d string) *fileScan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scans[d]
}

func (c *splitCache) keepScan(d string, s *fileScan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scans == nil || len(c.scans) >= maxSplitEntries {
		c.scans = map[string]*fileScan{}
	}
	c.scans[d] = s
}

func (c *splitCache) versions(key string) []*cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.parts[key])
}

func (c *splitCache) keep(key string, part *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parts == nil || len(c.parts) >= maxSplitEntries {
		c.parts = map[string][]*cached{}
	}
	kept := append([]*cached{part}, c.parts[key]...)
	c.parts[key] = kept[:min(len(kept), keptVersions)]
}

// fileScan is what a split build needs of a resource file: the names its
// objects of referenced kinds define, the names of all its objects, and
// every string it holds.
type fileScan struct {
	objects int
	names   []string // names a reference may hold
	own     []string // every object's name: two objects of one name conflict
	strs    map[string]bool
}

// splitKust is one kustomization of a build.
type splitKust struct {
	file   string
	parent *splitKust
	prefix string
	suffix string
	// files are the values of its resources entries that are files, by
	// the index of the file in splitPlan.files.
	files map[string]int
}

// splitFile is one resource file of a build.
type splitFile struct {
	path string
	kust *splitKust
	scan *fileScan
}

// splitPatch is a patch without a target: it names the objects it patches,
// which must be in its part, and it goes in theirs alone (kustomize fails a
// build where such a patch finds nothing).
type splitPatch struct {
	kust  *splitKust
	field string // patches or patchesStrategicMerge
	index int    // in that field
	names []string
	part  int
}

// splitPlan is a build cut in parts.
type splitPlan struct {
	entry, kfile string
	kusts        []*splitKust
	files        []*splitFile // in the order one build reads them
	patches      []*splitPatch
	parts        [][]int // file indexes of each part, in read order
}

// planSplit returns the parts of the build of entry, or nil when the build
// must be whole. It reads every file the build reads, through t.
func planSplit(t *Tree, entry, kfile string, cache *splitCache) *splitPlan {
	p := &splitPlan{entry: entry, kfile: kfile}
	if !p.visit(t, entry, nil, map[string]bool{}) {
		return nil
	}
	total := 0
	for _, f := range p.files {
		data, err := t.ReadFile(f.path)
		if err != nil {
			return nil
		}
		d := digest(data)
		if f.scan = cache.scan(d); f.scan == nil {
			if f.scan = scanFile(data); f.scan == nil {
				return nil
			}
			cache.keepScan(d, f.scan)
		}
		total += f.scan.objects
	}
	n := 1
	for n*2*splitObjects <= total {
		n *= 2
	}
	if n < 2 {
		return nil
	}
	if !p.cut(n) {
		return nil
	}
	return p
}

// visit adds the kustomization of dir, read by parent, and what it reads.
func (p *splitPlan) visit(t *Tree, dir string, parent *splitKust, seen map[string]bool) bool {
	file := findKustomization(t, dir)
	if file == "" || seen[file] {
		return false
	}
	seen[file] = true
	data, err := t.ReadFile(file)
	if err != nil {
		return false
	}
	if !splitKeys(data) {
		return false
	}
	var k types.Kustomization
	if k.Unmarshal(data) != nil || (k.Kind != "" && k.Kind != types.KustomizationKind) {
		return false
	}
	if slices.Contains(k.BuildMetadata, types.TransformerAnnotations) {
		return false // every transformer of the build is written on every object
	}
	kust := &splitKust{file: file, parent: parent, prefix: k.NamePrefix, suffix: k.NameSuffix, files: map[string]int{}}
	p.kusts = append(p.kusts, kust)
	for i, pt := range k.Patches {
		text, ok := patchText(t, dir, pt.Path, pt.Patch)
		if !ok || (pt.Options != nil && pt.Options.AllowNameChange) {
			return false
		}
		if pt.Target != nil {
			if renames(text) {
				return false
			}
			continue
		}
		names, ok := patchNames(text)
		if !ok {
			return false
		}
		p.patches = append(p.patches, &splitPatch{kust: kust, field: "patches", index: i, names: names})
	}
	for i, psm := range k.PatchesStrategicMerge {
		text, ok := string(psm), true
		if !strings.ContainsAny(text, "\n{") {
			text, ok = patchText(t, dir, text, "")
		}
		names, namesOK := patchNames(text)
		if !ok || !namesOK {
			return false
		}
		p.patches = append(p.patches, &splitPatch{kust: kust, field: "patchesStrategicMerge", index: i, names: names})
	}
	for _, r := range k.Resources {
		if isRemote(r) {
			return false
		}
		rp, err := Join(dir, r)
		if err != nil {
			return false
		}
		info, err := t.Stat(rp)
		switch {
		case err != nil:
			return false
		case info.IsDir():
			if !p.visit(t, rp, kust, seen) {
				return false
			}
		default:
			if seen[rp] {
				return false
			}
			seen[rp] = true
			if _, twice := kust.files[r]; twice {
				return false
			}
			kust.files[r] = len(p.files)
			p.files = append(p.files, &splitFile{path: rp, kust: kust})
		}
	}
	return true
}

// splitKeys reports whether a kustomization's fields are all of
// splitFields, each written once and as spelled there: kustomize reads keys
// in any case and the last of two alike, where keepPart edits the first.
func splitKeys(data []byte) bool {
	node, err := kyaml.Parse(string(data))
	if err != nil || node.YNode().Kind != kyaml.MappingNode {
		return false
	}
	seen := map[string]bool{}
	content := node.YNode().Content
	for i := 0; i+1 < len(content); i += 2 {
		key := strings.ToLower(content[i].Value)
		if !splitFields[content[i].Value] || seen[key] {
			return false
		}
		seen[key] = true
	}
	return true
}

// patchText is a patch's text: inline, or the file at rel from dir.
func patchText(t *Tree, dir, rel, inline string) (string, bool) {
	if rel == "" {
		return inline, true
	}
	p, err := Join(dir, rel)
	if err != nil {
		return "", false
	}
	data, err := t.ReadFile(p)
	return string(data), err == nil
}

// renames reports whether a patch with a target may write the names of the
// objects it patches: a JSON patch writing a name (a strategic merge patch
// keeps the name, unless allowNameChange, refused before).
func renames(text string) bool {
	var ops []map[string]any
	if yaml.Unmarshal([]byte(text), &ops) != nil {
		return false
	}
	for _, op := range ops {
		target, _ := op["path"].(string)
		if target == "" || target == "/" || target == "/metadata" || strings.HasPrefix(target, "/metadata/name") {
			return true
		}
	}
	return false
}

// patchNames returns the names of the objects a patch without a target
// patches: a strategic merge patch names them in its documents; a JSON
// patch without a target is kustomize's error, which a whole build reports.
func patchNames(text string) ([]string, bool) {
	dec := kyaml.NewDecoder(strings.NewReader(text))
	var names []string
	for {
		var doc kyaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return names, len(names) > 0
		}
		if err != nil || len(doc.Content) == 0 {
			return nil, false
		}
		name := mapValue(mapValue(doc.Content[0], "metadata"), "name")
		if name == nil || name.Value == "" {
			return nil, false
		}
		names = append(names, name.Value)
	}
}

// scanFile reads the names a resource file's objects define and every
// string it holds; nil when it does not parse (the build says why).
func scanFile(data []byte) *fileScan {
	s := &fileScan{strs: map[string]bool{}}
	dec := kyaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc kyaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return s
		}
		if err != nil {
			return nil
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != kyaml.MappingNode {
			continue
		}
		top := doc.Content[0]
		s.objects++
		kind := ""
		if v := mapValue(top, "kind"); v != nil {
			kind = v.Value
		}
		if name := mapValue(mapValue(top, "metadata"), "name"); name != nil {
			s.own = append(s.own, name.Value)
		}
		switch items := mapValue(top, "items"); {
		case items != nil && items.Kind == kyaml.SequenceNode:
			// A List: each item's name may be referred to.
			s.objects += len(items.Content)
			s.walk(top, true)
			s.own = append(s.own, s.names...)
		case kind == "CustomResourceDefinition":
			// Its custom resources go where it goes: its kind's names
			// count as names.
			if names := mapValue(mapValue(top, "spec"), "names"); names != nil && names.Kind == kyaml.MappingNode {
				for i := 1; i < len(names.Content); i += 2 {
					v := names.Content[i]
					if v.Kind == kyaml.SequenceNode { // shortNames, categories
						for _, item := range v.Content {
							s.names = append(s.names, item.Value)
						}
					} else {
						s.names = append(s.names, v.Value)
					}
				}
			}
			s.walk(top, false)
		default:
			if name := mapValue(mapValue(top, "metadata"), "name"); name != nil && referencedKinds[kind] {
				s.names = append(s.names, name.Value)
			}
			s.walk(top, false)
		}
	}
}

// walk adds the strings of n; with names, the names in its metadata too.
func (s *fileScan) walk(n *kyaml.Node, names bool) {
	if n == nil {
		return
	}
	switch n.Kind {
	case kyaml.ScalarNode:
		s.strs[n.Value] = true
	case kyaml.MappingNode:
		if names {
			if name := mapValue(mapValue(n, "metadata"), "name"); name != nil {
				s.names = append(s.names, name.Value)
			}
		}
		fallthrough
	case kyaml.SequenceNode, kyaml.DocumentNode:
		for _, c := range n.Content {
			s.walk(c, names)
		}
	}
}

// mapValue is the value of key in mapping m, nil when absent.
func mapValue(m *kyaml.Node, key string) *kyaml.Node {
	if m == nil || m.Kind != kyaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// cut puts the files in n parts. Files are joined when one holds a string
// that is a name an object of the other has at some step of the build (as
// written, then with the prefix, the suffix, and both, of each
// kustomization from its own up): a name reference kustomize rewrites is
// such a string. Files whose objects may come to have one name are joined
// (kustomize refuses two objects of one identity), and so are the files a
// patch without a target names, and the patch goes with them. A group of
// joined files goes to the part its first path hashes to, so that a change
// that joins no new files changes one part. cut fails when such a patch
// names no object (kustomize's error, which a whole build reports).
func (p *splitPlan) cut(n int) bool {
	parent := make([]int, len(p.files))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(i, j int) {
		if a, b := find(i), find(j); a != b {
			parent[a] = b
		}
	}
	definedBy, ownedBy := map[string][]int{}, map[string][]int{}
	for i, f := range p.files {
		addNames(definedBy, f, i, f.scan.names)
		addNames(ownedBy, f, i, f.scan.own)
	}
	for _, files := range ownedBy {
		for _, j := range files[1:] {
			union(files[0], j)
		}
	}
	for i, f := range p.files {
		for s := range f.scan.strs {
			for _, j := range definedBy[s] {
				union(i, j)
			}
		}
	}
	patched := make([]int, len(p.patches)) // a file each patch patches
	for i, pt := range p.patches {
		patched[i] = -1
		for _, name := range pt.names {
			for _, j := range definedBy[name] {
				if patched[i] >= 0 {
					union(patched[i], j)
				}
				patched[i] = j
			}
		}
		if patched[i] < 0 {
			return false
		}
	}
	first := map[int]string{}
	for i, f := range p.files {
		root := find(i)
		if cur, ok := first[root]; !ok || f.path < cur {
			first[root] = f.path
		}
	}
	partOf := func(i int) int {
		h := fnv.New32a()
		h.Write([]byte(first[find(i)]))
		return int(h.Sum32() % uint32(n))
	}
	p.parts = make([][]int, n)
	for i := range p.files {
		p.parts[partOf(i)] = append(p.parts[partOf(i)], i)
	}
	for i, pt := range p.patches {
		pt.part = partOf(patched[i])
	}
	return true
}

// addNames adds to by each of names, file i's, with every name it has on
// its way up the build: after the prefix, the suffix, and both, of each
// kustomization from the file's own up (the prefix and the suffix are two
// transformers, and an object is known by its name between them too).
func addNames(by map[string][]int, f *splitFile, i int, names []string) {
	for _, name := range names {
		by[name] = append(by[name], i)
		for k := f.kust; k != nil; k = k.parent {
			by[k.prefix+name] = append(by[k.prefix+name], i)
			by[name+k.suffix] = append(by[name+k.suffix], i)
			name = k.prefix + name + k.suffix
			by[name] = append(by[name], i)
		}
	}
}

// build builds every part, from the cache where a part's inputs did not
// change, and returns their objects in the order of one build; ok is false
// when a part failed or an object cannot be placed, and the build must be
// whole. Each part's reads are recorded in t.
func (p *splitPlan) build(ctx context.Context, t *Tree, lim Limits, cache *splitCache, stripOrigins bool) ([]schema.Doc, bool) {
	results := make([]*cached, len(p.parts))
	read := t.digests()
	var failed atomic.Bool
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, files := range p.parts {
		if len(files) == 0 {
			continue
		}
		key := p.partKey(files)
		if c := cachedPart(t, read, cache, key); c != nil {
			results[i] = c
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if failed.Load() {
				return
			}
			c := p.buildPart(ctx, t.fsys, i, lim, stripOrigins)
			if len(c.errs) > 0 {
				failed.Store(true)
				return
			}
			if ctx.Err() == nil {
				cache.keep(key, c)
			}
			results[i] = c
		})
	}
	wg.Wait()
	if failed.Load() || ctx.Err() != nil {
		return nil, false
	}
	order := make(map[string]int, len(p.files))
	for i, f := range p.files {
		order[f.path] = i
	}
	var docs []schema.Doc
	var size int64
	for _, c := range results {
		if c == nil {
			continue // a part with no files
		}
		for k, d := range c.inputs {
			t.record(k, d)
		}
		for _, d := range c.docs {
			if _, ok := order[d.File]; !ok {
				return nil, false
			}
			size += int64(len(d.Data))
		}
		docs = append(docs, c.docs...)
	}
	if size > lim.maxOutput() {
		return nil, false // the whole build says so
	}
	slices.SortStableFunc(docs, func(a, b schema.Doc) int { return order[a.File] - order[b.File] })
	return docs, true
}

// partKey names a part by the build and its files: a part whose files
// change is another part.
func (p *splitPlan) partKey(files []int) string {
	var b strings.Builder
	b.WriteString(p.entry)
	for _, i := range files {
		b.WriteByte(0)
		b.WriteString(p.files[i].path)
	}
	return b.String()
}

// cachedPart returns a part built before whose inputs read the same now,
// comparing with what t has read already (read) before reading anything
// again.
func cachedPart(t *Tree, read map[string]string, cache *splitCache, key string) *cached {
	for _, c := range cache.versions(key) {
		valid := true
		for k, d := range c.inputs {
			now, ok := read[k]
			if !ok {
				now = t.digestOf(k)
			}
			if now != d {
				valid = false
				break
			}
		}
		if valid {
			return c
		}
	}
	return nil
}

// buildPart builds part: every kustomization of the build, each reading
// its folders, and of its files and its patches without a target those of
// the part.
func (p *splitPlan) buildPart(ctx context.Context, fsys fs.FS, part int, lim Limits, stripOrigins bool) *cached {
	inPart := map[int]bool{}
	for _, i := range p.parts[part] {
		inPart[i] = true
	}
	t := newTree(fsys)
	tfs := &treeFS{ctx: ctx, t: t, edit: func(name string, data []byte) ([]byte, error) {
		for _, k := range p.kusts {
			if k.file == name {
				data = p.keepPart(data, k, part, inPart)
				break
			}
		}
		if name == p.kfile {
			data = askOrigins(data)
		}
		return data, nil
	}}
	m, err := buildInTime(ctx, tfs, p.entry, lim)
	if err != nil {
		return &cached{errs: schema.ErrorList{{File: p.kfile, Msg: err.Error()}}}
	}
	docs, errs := kustomizeDocs(t, m, p.entry, p.kfile, stripOrigins, lim)
	return &cached{docs: docs, errs: errs, inputs: t.digests()}
}

// keepPart rewrites kustomization k for part: its resources keep its
// folders and the part's files, its patches without a target those of the
// part. A file that does not parse is left for krusty to report.
func (p *splitPlan) keepPart(data []byte, k *splitKust, part int, inPart map[int]bool) []byte {
	node, err := kyaml.Parse(string(data))
	if err != nil {
		return data
	}
	if seq, err := node.Pipe(kyaml.Lookup("resources")); err == nil && seq != nil {
		seq.YNode().Content = slices.DeleteFunc(seq.YNode().Content, func(n *kyaml.Node) bool {
			i, isFile := k.files[n.Value]
			return isFile && !inPart[i]
		})
	}
	for _, field := range []string{"patches", "patchesStrategicMerge"} {
		seq, err := node.Pipe(kyaml.Lookup(field))
		if err != nil || seq == nil {
			continue
		}
		drop := map[*kyaml.Node]bool{}
		for _, pt := range p.patches {
			if pt.kust == k && pt.field == field && pt.part != part && pt.index < len(seq.YNode().Content) {
				drop[seq.YNode().Content[pt.index]] = true
			}
		}
		seq.YNode().Content = slices.DeleteFunc(seq.YNode().Content, func(n *kyaml.Node) bool { return drop[n] })
	}
	s, err := node.String()
	if err != nil {
		return data
	}
	return []byte(s)
}
