package schema

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedDefinitionsUpToDate runs the generator (make schema) into a
// temporary directory and compares its output with what is committed, so a
// hand edit or a forgotten regeneration fails CI. It needs the Go module
// proxy (or a module cache holding k8s.io/api v0.36.6); offline it skips.
func TestGeneratedDefinitionsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cue get go; skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "gen")
	cmd := exec.CommandContext(t.Context(), "bash", filepath.Join("..", "hack", "schemagen", "gen.sh"))
	cmd.Env = append(os.Environ(), "SCHEMA_GEN_OUT="+out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		for _, offline := range []string{"dial tcp", "no such host", "connection refused", "network is unreachable"} {
			if strings.Contains(string(msg), offline) {
				t.Skipf("generator cannot fetch its modules (offline?): %s", msg)
			}
		}
		t.Fatalf("make schema failed: %v\n%s", err, msg)
	}
	committed := filepath.Join("cue", "cue.mod", "gen")
	want := readTree(t, out)
	got := readTree(t, committed)
	for name, data := range want {
		if c, ok := got[name]; !ok {
			t.Errorf("%s is generated but not committed: run make schema", name)
		} else if !bytes.Equal(c, data) {
			t.Errorf("%s differs from what make schema generates: run make schema", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is committed but no longer generated: run make schema", name)
		}
	}
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
