package gitsync

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing/fstest"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/keelson/keelson/schema"
)

// PlanGit plans what merging head into base would do, from the two commits
// of the local repository at repoPath: it validates head and compares the
// objects of the two revisions.
//
// Only files whose blob differs between base and head are read, decoded and
// validated; files that are the same blob in both hold the same objects and
// are counted in Plan.UntouchedFiles, and their documents, counted without
// being decoded, in Plan.Unchanged. When a .keelsonignore file differs,
// every file is read, since the set of manifests may change. An object that
// head creates is also looked for in the untouched files, so that defining
// it twice is caught.
//
// Errors: ErrFetch (a ref or the repository could not be read), ctx.Err().
// Problems of head are in Plan.Errors, not in the error.
func PlanGit(ctx context.Context, repoPath, baseRef, headRef string, opts PlanOptions) (*Plan, error) {
	s := opts.syncer()
	bg, hg := NewLocalGit(repoPath, baseRef), NewLocalGit(repoPath, headRef)
	repo, err := hg.open()
	if err != nil {
		return nil, err
	}
	bc, err := bg.commit(repo)
	if err != nil {
		return nil, err
	}
	hc, err := hg.commit(repo)
	if err != nil {
		return nil, err
	}
	p := &Plan{Base: planRev(baseRef, bc), Head: *planRev(headRef, hc), Path: s.Path, Objects: []*PlannedObject{}, Risks: []Risk{}, Errors: schema.ErrorList{}}
	bt, err := planTreeOf(repo, bc)
	if err != nil {
		return nil, err
	}
	ht, err := planTreeOf(repo, hc)
	if err != nil {
		return nil, err
	}
	changed := changedPaths(bt, ht)
	bfs, err := bt.subset(repo, changed)
	if err != nil {
		return nil, err
	}
	hfs, err := ht.subset(repo, changed)
	if err != nil {
		return nil, err
	}
	root := s.pathOrRoot()
	bl := newBlobs(repo)
	headFiles, untouched := ht.manifests(root, changed)
	p.UntouchedFiles = untouched
	if p.UntouchedObjects, err = ht.countUntouched(bl, root, changed); err != nil {
		return nil, err
	}
	if baseFiles, _ := bt.manifests(root, changed); headFiles == 0 && baseFiles > 0 {
		p.Errors = append(p.Errors, emptyHead(root))
	}
	crds, err := s.untouchedCRDs(ctx, bl, ht, changed)
	if err != nil {
		return nil, err
	}
	withCRDs := schema.WithCustomResources(crds...)
	baseObjs, _, err := s.loadPlanSide(ctx, bfs, Revision{ID: bc.Hash.String()}, withCRDs)
	if err != nil {
		return nil, err
	}
	headObjs, problems, err := s.loadPlanSide(ctx, hfs, Revision{ID: hc.Hash.String()}, withCRDs)
	if err != nil {
		return nil, err
	}
	hpas, err := s.untouchedAutoscalers(ctx, bl, ht, changed)
	if err != nil {
		return nil, err
	}
	markAutoscaled(headObjs, hpas)
	p.Errors = append(p.Errors, problems...)
	dups, err := s.definedElsewhere(ctx, bl, ht, changed, baseObjs, headObjs)
	if err != nil {
		return nil, err
	}
	p.Errors = append(p.Errors, dups...)
	if err := p.compare(baseObjs, headObjs, nil); err != nil {
		return nil, err
	}
	cidr, ports, err := opts.serviceRanges(nil)
	if err != nil {
		return nil, err
	}
	more := func(ctx context.Context, words []string) (map[key]*desired, error) {
		return s.untouchedMentioning(ctx, bl, ht, changed, words)
	}
	if err := p.addServices(ctx, &serviceScope{cidr: cidr, ports: ports, old: baseObjs, head: headObjs, fsys: hfs, untouched: more}); err != nil {
		return nil, err
	}
	p.Unchanged += p.UntouchedObjects
	return p, nil
}

func planRev(ref string, c *object.Commit) *PlanRevision {
	subject, _, _ := strings.Cut(c.Message, "\n")
	return &PlanRevision{Ref: ref, Commit: c.Hash.String(), Subject: subject}
}

func underRoot(name, root string) bool {
	return root == "." || name == root || strings.HasPrefix(name, root+"/")
}

// treeEntry is one file of a tree, by blob.
type planEntry struct {
	hash plumbing.Hash
	mode filemode.FileMode
}

// tree lists the files and symlinks of one commit, without reading them.
type planTree map[string]planEntry

func planTreeOf(repo *git.Repository, c *object.Commit) (planTree, error) {
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("%w: tree of %s: %v", ErrFetch, c.Hash.String()[:12], err)
	}
	out := planTree{}
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: walk tree of %s: %v", ErrFetch, c.Hash.String()[:12], err)
		}
		switch e.Mode {
		case filemode.Regular, filemode.Executable, filemode.Deprecated, filemode.Symlink:
			out[name] = planEntry{e.Hash, e.Mode}
		}
	}
}

// manifests counts the manifest files of t under root, and those among
// them that did not change.
func (t planTree) manifests(root string, changed map[string]bool) (all, untouched int) {
	for name := range t {
		if schema.IsManifest(name) && underRoot(name, root) {
			all++
			if !changed[name] {
				untouched++
			}
		}
	}
	return all, untouched
}

// countUntouched counts the objects of the manifest files of t under root
// that did not change: each file's documents, without decoding them (a plan
// validates only what changed, and these are the same blobs the cluster has).
func (t planTree) countUntouched(bl *blobs, root string, changed map[string]bool) (int, error) {
	n := 0
	for name, e := range t {
		if changed[name] || e.mode == filemode.Symlink || !schema.IsManifest(name) || !underRoot(name, root) {
			continue
		}
		b, err := bl.read(e.hash)
		if err != nil {
			return 0, fmt.Errorf("%w: read %s: %v", ErrFetch, name, err)
		}
		n += countDocuments(name, b)
	}
	return n, nil
}

// countDocuments counts the non-empty documents of a manifest: one for a
// JSON file; for YAML, the parts between "---" lines (a line starting with
// "---" at column 0 is always a document marker: content of a block scalar
// under a top-level key is indented) that hold more than comments.
func countDocuments(name string, data []byte) int {
	if strings.HasSuffix(strings.ToLower(name), ".json") {
		if len(bytes.TrimSpace(data)) == 0 {
			return 0
		}
		return 1
	}
	n, content := 0, false
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("...")) {
			if content {
				n++
			}
			content = false
			// "--- key: value" starts a document with content on its line.
			rest := bytes.TrimSpace(line[3:])
			content = len(rest) > 0 && rest[0] != '#' && bytes.HasPrefix(line, []byte("---"))
			continue
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && !bytes.HasPrefix(t, []byte("%")) {
			content = true
		}
	}
	if content {
		n++
	}
	return n
}

// changedPaths are the paths whose blob differs between a and b, and the
// symlinks that lead to one. When an ignore file differs, every path is.
func changedPaths(a, b planTree) map[string]bool {
	out := map[string]bool{}
	all := false
	mark := func(x, y planTree) {
		for name, e := range x {
			if f, ok := y[name]; !ok || f != e {
				out[name] = true
				all = all || path.Base(name) == schema.IgnoreFile
			}
		}
	}
	mark(a, b)
	mark(b, a)
	// A rendered object depends on files other than its own (an overlay's
	// patch, a chart's values): when the tree renders anything, a change
	// anywhere may change any object, so both sides are read whole.
	all = all || len(out) > 0 && (renders(a) || renders(b))
	if all {
		for _, t := range []planTree{a, b} {
			for name := range t {
				out[name] = true
			}
		}
	}
	return out
}

// renders reports whether t holds anything the renderers build: a
// kustomization, a Helm chart (a folder or an archive), CUE.
func renders(t planTree) bool {
	for name := range t {
		switch base := path.Base(name); {
		case base == "kustomization.yaml", base == "kustomization.yml", base == "Kustomization",
			base == "Chart.yaml", strings.HasSuffix(base, ".cue"), strings.HasSuffix(base, ".tgz"):
			return true
		}
	}
	return false
}

// subset reads into memory the changed files of t, the ignore files, and
// what symlinks among them lead to; it adds to changed the symlinks of t
// that lead to a changed file.
func (t planTree) subset(repo *git.Repository, changed map[string]bool) (fs.FS, error) {
	m := fstest.MapFS{}
	read := func(name string) error {
		if _, done := m[name]; done {
			return nil
		}
		e := t[name]
		data, err := readBlob(repo, e.hash)
		if err != nil {
			return fmt.Errorf("%w: read %s: %v", ErrFetch, name, err)
		}
		mode := fs.FileMode(0o644)
		if e.mode == filemode.Symlink {
			mode = fs.ModeSymlink | 0o777
		}
		m[name] = &fstest.MapFile{Data: data, Mode: mode}
		return nil
	}
	for name, e := range t {
		if changed[name] || path.Base(name) == schema.IgnoreFile {
			if err := read(name); err != nil {
				return nil, err
			}
		}
		if e.mode != filemode.Symlink {
			continue
		}
		hops, err := t.follow(repo, name)
		if err != nil {
			return nil, err
		}
		for _, h := range hops {
			if changed[h] {
				changed[name] = true
			}
		}
		if changed[name] {
			for _, h := range append(hops, name) {
				if err := read(h); err != nil {
					return nil, err
				}
			}
		}
	}
	return newTreeFS(m), nil
}

// follow returns the paths a symlink leads through, inside the tree; the
// loader reports the links that leave it or break.
func (t planTree) follow(repo *git.Repository, name string) ([]string, error) {
	var hops []string
	cur := name
	for range 16 {
		e, ok := t[cur]
		if !ok || e.mode != filemode.Symlink {
			return hops, nil
		}
		target, err := readBlob(repo, e.hash)
		if err != nil {
			return nil, fmt.Errorf("%w: read symlink %s: %v", ErrFetch, cur, err)
		}
		if path.IsAbs(string(target)) {
			return hops, nil
		}
		cur = path.Join(path.Dir(cur), string(target))
		if _, ok := t[cur]; ok {
			hops = append(hops, cur)
		}
	}
	return hops, nil
}

// emptyHead is the problem of a head with no manifests where base had
// some: a wrong path or branch would delete every object of the sync.
func emptyHead(root string) *schema.Error {
	return &schema.Error{File: root, Msg: fmt.Sprintf("no manifests under %s in head, which would delete every object of the sync; the sync refuses such a revision unless allowEmpty is set", root)}
}

// loadPlanSide loads and validates the manifests of fsys under the sync's
// path, as a sync would, keyed by object.
func (s *Syncer) loadPlanSide(ctx context.Context, fsys fs.FS, rev Revision, opts ...schema.Option) (map[key]*desired, schema.ErrorList, error) {
	root := s.pathOrRoot()
	if _, err := fs.Stat(fsys, root); err != nil {
		return map[key]*desired{}, nil, nil // nothing under the path changed
	}
	fsys, encrypted, problems := s.decrypt(fsys, []string{root}, true)
	objs, more, err := s.load(ctx, fsys, []string{root}, opts...)
	if err != nil {
		return nil, nil, err
	}
	problems = append(problems, more...)
	if s.RequireEncryptedSecrets {
		problems = append(problems, plainSecrets(objs, encrypted)...)
	}
	more, _ = registerTreeCRDs(objs)
	problems = append(problems, more...)
	_, byKey, more := s.buildDesired(objs, rev)
	problems = append(problems, more...)
	for _, d := range byKey {
		d.encrypted = d.src != nil && encrypted[d.src.File]
	}
	markAutoscaled(byKey, nil)
	hideSecretValues(problems)
	return byKey, problems, nil
}

// hideSecretValues cuts the offending value out of the problems with a
// Secret's data: a plan is posted where the values must not be.
func hideSecretValues(problems schema.ErrorList) {
	for _, e := range problems {
		if e.Kind != "Secret" || !(strings.HasPrefix(e.Path, "data") || strings.HasPrefix(e.Path, "stringData")) {
			continue
		}
		if i := strings.Index(e.Msg, ", got "); i >= 0 {
			e.Msg = e.Msg[:i] + ", got a value not shown here"
		}
	}
}
