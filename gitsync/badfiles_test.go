package gitsync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFilesRejectNothingApplied: a symlink out of the repository, a file
// over the size limit and a binary file under the path are each refused by
// name, and the valid manifest committed with them is not applied either.
func TestBadFilesRejectNothingApplied(t *testing.T) {
	tests := []struct {
		name  string
		write func(dir string) error
		want  []string
	}{
		{"symlink out of the repository", func(dir string) error {
			return os.Symlink("/etc/passwd", filepath.Join(dir, "deploy", "passwd.yaml"))
		}, []string{"deploy/passwd.yaml", "symlink points outside the tree"}},
		{"symlink up and out", func(dir string) error {
			return os.Symlink("../../outside.yaml", filepath.Join(dir, "deploy", "up.yaml"))
		}, []string{"deploy/up.yaml", "symlink points outside the tree"}},
		{"file over the size limit", func(dir string) error {
			big := configMap("big", strings.Repeat("x", 1<<20))
			return os.WriteFile(filepath.Join(dir, "deploy", "big.yaml"), []byte(big), 0o644)
		}, []string{"deploy/big.yaml", "over the limit"}},
		{"binary file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "deploy", "image.yaml"), []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"), 0o644)
		}, []string{"deploy/image.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSyncer(t, "apps")
			s.Path = "deploy"
			r := newRepo(t)
			if err := os.MkdirAll(filepath.Join(r.dir, "deploy"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.write(r.dir); err != nil {
				t.Fatal(err)
			}
			r.commit(map[string]string{"deploy/good.yaml": configMap("good", "1")})
			_, err := syncNow(t, s, NewLocalGit(r.dir, "main"))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
			if v := versions(t, s); len(v) != 0 {
				t.Errorf("objects written: %v", v)
			}
		})
	}
}
