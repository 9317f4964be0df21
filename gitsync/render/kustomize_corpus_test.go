package render

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// corpusDir is the shared corpus of other projects' manifests, read in
// place and never copied into the repository ($KEELSON_CORPUS, as for
// schema's corpus test).
func corpusDir() string {
	if d := os.Getenv("KEELSON_CORPUS"); d != "" {
		return d
	}
	return "../../../shared/corpus"
}

// keelsonRefusals are the messages of what keelson refuses to build on
// purpose; any other error from a corpus kustomization is a failure.
var keelsonRefusals = []string{errRemote.Error(), errHelmInKustomization.Error(), "keelson runs no plugins"}

// TestKustomizeCorpus builds every kustomization of the shared corpus:
// each builds, or fails with keelson's own refusal (a remote base, a chart,
// a plugin); both are counted. The corpus kept no kustomization files of
// its sources, so the folders its sources build with kustomize are also
// built here with a kustomization listing the folder's manifests, as those
// projects' own did.
func TestKustomizeCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir()); err != nil {
		t.Skipf("no shared corpus at %s: %v", corpusDir(), err)
	}
	corpus := os.DirFS(corpusDir())
	var found, built, refused int
	err := fs.WalkDir(corpus, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !slices.Contains(kustomizationNames, d.Name()) {
			return err
		}
		found++
		out := New(Limits{}).Render(t.Context(), corpus, []string{path.Dir(p)})
		switch {
		case len(out.Errors) == 0 && len(out.Docs) > 0:
			built++
			splitMatches(t, corpus, path.Dir(p))
		case len(out.Errors) > 0 && isRefusal(out.Errors[0].Msg):
			refused++
		default:
			t.Errorf("%s: %d objects, errors: %v", p, len(out.Docs), out.Errors)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if built+refused != found {
		t.Errorf("%d kustomizations: %d built, %d refused by keelson", found, built, refused)
	}
	t.Logf("corpus: %d kustomization files, %d built, %d refused as remote, chart or plugin", found, built, refused)

	for _, dir := range []string{"argocd-example-apps/kustomize-guestbook", "argocd-example-apps/sock-shop/base"} {
		t.Run(dir, func(t *testing.T) {
			fsys, objects := corpusFolder(t, corpus, dir)
			out := New(Limits{}).Render(t.Context(), fsys, nil)
			splitMatches(t, fsys, dir)
			if len(out.Errors) > 0 {
				t.Fatalf("%s: %v", dir, out.Errors)
			}
			if len(out.Docs) != objects {
				t.Errorf("%d objects, the folder's files hold %d", len(out.Docs), objects)
			}
			for _, d := range out.Docs {
				if !strings.HasPrefix(d.File, dir+"/") || d.File == dir+"/kustomization.yaml" {
					t.Errorf("object from %s, want one of the folder's files", d.File)
				}
			}
			built++
		})
	}
	if built == 0 {
		t.Error("no kustomization of the corpus built")
	}
}

// splitMatches checks that dir of fsys built in parts as small as they
// come is the same as built whole (TestSplitBuildsAsOne on real
// repositories).
func splitMatches(t *testing.T, fsys fs.FS, dir string) {
	t.Helper()
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := renderWith(t, New(Limits{}), sub, 1<<30)
	split, builds := renderWith(t, New(Limits{}), sub, 1)
	if msg := compareOutput(split, whole); msg != "" {
		t.Errorf("%s split: %s", dir, msg)
	}
	t.Logf("%s: %d objects, built in %d parts", dir, len(split.Docs), builds)
}

func isRefusal(msg string) bool {
	for _, r := range keelsonRefusals {
		if strings.Contains(msg, r) {
			return true
		}
	}
	return false
}

// corpusFolder returns a tree of the manifests of corpus folder dir with a
// kustomization listing them and a name prefix, and how many objects the
// files hold.
func corpusFolder(t *testing.T, corpus fs.FS, dir string) (fstest.MapFS, int) {
	t.Helper()
	es, err := fs.ReadDir(corpus, dir)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	var k bytes.Buffer
	k.WriteString("namePrefix: corpus-\nresources:\n")
	var objects int
	for _, e := range es {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		data, err := fs.ReadFile(corpus, path.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fsys[path.Join(dir, e.Name())] = &fstest.MapFile{Data: data}
		k.WriteString("- " + e.Name() + "\n")
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			if bytes.Contains(doc, []byte("kind:")) {
				objects++
			}
		}
	}
	if objects == 0 {
		t.Fatal(errors.New(dir + " holds no manifests"))
	}
	fsys[path.Join(dir, "kustomization.yaml")] = &fstest.MapFile{Data: k.Bytes()}
	return fsys, objects
}
