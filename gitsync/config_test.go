package gitsync

import (
	"errors"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for success
		wantGit bool
	}{
		{"git repository", Config{Repo: r.dir, Ref: "main"}, "", true},
		{"plain directory", Config{Repo: dir}, "", false},
		{"ref on a directory", Config{Repo: dir, Ref: "main"}, "not a Git repository", false},
		{"no repo", Config{}, "--repo is required", false},
		{"missing repo", Config{Repo: dir + "/nope"}, "nope", false},
		{"remote without a cache dir", Config{Repo: "https://example.com/x.git"}, "cache directory", false},
		{"bad name", Config{Name: "a/b", Repo: dir}, "sync name", false},
		{"bad namespace", Config{Repo: dir, TargetNamespace: "No"}, "target namespace", false},
	}
	st := newSyncer(t, "x")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.cfg, st.Store, st.Schema, nil, nil)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrConfig with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, isGit := l.Source.(*LocalGit); isGit != tc.wantGit {
				t.Errorf("source %s, want git %v", l.Source, tc.wantGit)
			}
			if l.Syncer.Name != "default" {
				t.Errorf("name %q, want default", l.Syncer.Name)
			}
		})
	}
}
