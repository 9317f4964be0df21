package schema

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"

func configMap(name string) string { return strings.Replace(cm, "%s", name, 1) }

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func names(objs []*Object) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.File+":"+o.Name)
	}
	return strings.Join(out, " ")
}

func TestLoadWalksTreeAndReportsAllFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"apps/a.yaml":             configMap("a"),
		"apps/b.json":             `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}`,
		"apps/bad1.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad}\n",
		"apps/notes.txt":          "not a manifest",
		"bad2.yml":                "apiVersion: v1\nkind: Frob\nmetadata: {name: x}\n",
		".git/config.yaml":        "not: read",
		"vendor/x.yaml":           "broken: [",
		"apps/drafts/wip.yaml":    "broken: [",
		"apps/drafts/keep.yaml":   configMap("keep"),
		".keelsonignore":          "# comment\nvendor/\n",
		"apps/.keelsonignore":     "drafts/*\n!drafts/keep.yaml\n",
		"apps/c.cue":              "apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"c\"\n",
		"apps/nested/deep/d.yaml": configMap("d"),
	})
	objs, err := testSchema(t).Load(t.Context(), os.DirFS(dir), nil)
	if got, want := names(objs), "apps/a.yaml:a apps/b.json:b apps/c.cue:c apps/drafts/keep.yaml:keep apps/nested/deep/d.yaml:d"; got != want {
		t.Errorf("objects %s\nwant %s", got, want)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("want two errors, got %v", err)
	}
	if !strings.HasPrefix(list[0].Error(), "apps/bad1.yaml:3:18: ConfigMap default/Bad: metadata.name:") ||
		!strings.HasPrefix(list[1].Error(), "bad2.yml:2:1: Frob x: kind: unsupported kind Frob") {
		t.Errorf("errors:\n%v", err)
	}
}

func TestLoadRoots(t *testing.T) {
	fsys := fstest.MapFS{
		"a/x.yaml": {Data: []byte(configMap("x"))},
		"b/y.yaml": {Data: []byte(configMap("y"))},
		"c.yaml":   {Data: []byte(configMap("c"))},
	}
	objs, err := testSchema(t).Load(t.Context(), fsys, []string{"b", "c.yaml"})
	if err != nil || names(objs) != "b/y.yaml:y c.yaml:c" {
		t.Errorf("got %s, %v", names(objs), err)
	}
}

func TestLoadSymlinks(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.yaml": configMap("outside")})
	dir := writeTree(t, map[string]string{"real/a.yaml": configMap("a")})
	links := map[string]string{
		"inside.yaml":  "real/a.yaml",
		"abs.yaml":     filepath.Join(outside, "secret.yaml"),
		"rel.yaml":     "../" + filepath.Base(outside) + "/secret.yaml",
		"chain.yaml":   "rel.yaml",
		"dirlink":      "real",
		"dangling.yml": "nothing.yaml",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := testSchema(t).Load(t.Context(), os.DirFS(dir), nil)
	if got := names(objs); got != "inside.yaml:a real/a.yaml:a" {
		t.Errorf("objects %s", got)
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, want := range []string{
		"abs.yaml: symlink points outside the tree",
		"rel.yaml: symlink points outside the tree",
		"chain.yaml: symlink points outside the tree",
		"dangling.yml: broken symlink",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "outside\n") || strings.Contains(names(objs), "outside") {
		t.Error("read a file outside the tree")
	}
}

func TestLoadCacheAnswersUnchangedFiles(t *testing.T) {
	files := fstest.MapFS{}
	for _, n := range []string{"a", "b", "c"} {
		files[n+".yaml"] = &fstest.MapFile{Data: []byte(configMap(n))}
	}
	files["bad.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: X}\n")}
	s, cache := testSchema(t), NewCache(100)
	objs1, err1 := s.Load(t.Context(), files, nil, WithCache(cache))
	files["b.yaml"] = &fstest.MapFile{Data: []byte(configMap("b2"))}
	files["copy.yaml"] = &fstest.MapFile{Data: []byte(configMap("a"))}
	objs2, err2 := s.Load(t.Context(), files, nil, WithCache(cache))
	if hits := cache.Hits(); hits != 4 { // a, c, bad, and copy (same content as a)
		t.Errorf("cache hits %d, want 4", hits)
	}
	if names(objs1) != "a.yaml:a b.yaml:b c.yaml:c" || names(objs2) != "a.yaml:a b.yaml:b2 c.yaml:c copy.yaml:a" {
		t.Errorf("objects %s / %s", names(objs1), names(objs2))
	}
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() || !strings.HasPrefix(err2.Error(), "bad.yaml:3:18:") {
		t.Errorf("errors %v / %v", err1, err2)
	}
	objs2[0].Object.(interface{ SetName(string) }).SetName("changed")
	objs3, _ := s.Load(t.Context(), files, nil, WithCache(cache))
	if objs3[0].Name != "a" || objs3[0].Object.(interface{ GetName() string }).GetName() != "a" {
		t.Error("a caller's change leaked into the cache")
	}
}

func TestLoadSharedAnswersWithTheCachedObjects(t *testing.T) {
	files := fstest.MapFS{"a.yaml": {Data: []byte(configMap("a"))}, "b.yaml": {Data: []byte(configMap("b"))}}
	s, cache := testSchema(t), NewCache(100)
	first, err := s.Load(t.Context(), files, nil, WithCache(cache), WithShared())
	if err != nil {
		t.Fatal(err)
	}
	files["b.yaml"] = &fstest.MapFile{Data: []byte(configMap("b2"))}
	shared, err := s.Load(t.Context(), files, nil, WithCache(cache), WithShared())
	if err != nil {
		t.Fatal(err)
	}
	copied, err := s.Load(t.Context(), files, nil, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	if names(shared) != "a.yaml:a b.yaml:b2" || names(copied) != names(shared) {
		t.Fatalf("objects %s / %s", names(shared), names(copied))
	}
	if shared[0].Object == first[0].Object {
		t.Error("a file validated by this load came out as the cache's own object")
	}
	if copied[0].Object == shared[0].Object {
		t.Error("a load without WithShared got the cache's own object")
	}
	again, _ := s.Load(t.Context(), files, nil, WithCache(cache), WithShared())
	if again[0].Object != shared[0].Object || again[0] == shared[0] {
		t.Error("two shared loads of an unchanged file do not share its typed object, or share its *Object")
	}
}

func TestLoadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := testSchema(t).Load(ctx, fstest.MapFS{"a.yaml": {Data: []byte(configMap("a"))}}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
}

// TestLoadConcurrently runs loads side by side (run with -race): CUE values
// are not safe to evaluate from several goroutines, so each takes an engine.
func TestLoadConcurrently(t *testing.T) {
	s, fsys := testSchema(t), benchRepo(40)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			objs, err := s.Load(t.Context(), fsys, nil, WithWorkers(4))
			if err != nil || len(objs) != 160 {
				t.Errorf("%d objects, %v", len(objs), err)
			}
		})
	}
	wg.Wait()
}
