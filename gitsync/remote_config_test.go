package gitsync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoteConfig(t *testing.T) {
	file := func(name string) string {
		f := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	token, key, hosts := file("token"), file("id"), file("known_hosts")
	cache := t.TempDir()
	local := newRepo(t)
	local.commit(map[string]string{"a.yaml": configMap("a", "1")})
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" when a RemoteGit is expected
	}{
		{"https", Config{Repo: "https://git.example.com/x.git", CacheDir: cache, Auth: Auth{TokenFile: token}}, ""},
		{"https without cache dir", Config{Repo: "https://git.example.com/x.git"}, "cache directory"},
		{"short ssh form", Config{Repo: "git@git.example.com:org/x.git", CacheDir: cache, Auth: Auth{SSHKeyFile: key, KnownHostsFile: hosts}}, ""},
		{"ssh without known_hosts", Config{Repo: "ssh://git@git.example.com/x.git", CacheDir: cache, Auth: Auth{SSHKeyFile: key}}, "known_hosts file (--git-known-hosts-file) is refused"},
		{"ssh without key", Config{Repo: "ssh://git@git.example.com/x.git", CacheDir: cache, Auth: Auth{KnownHostsFile: hosts}}, "--git-ssh-key-file"},
		{"ssh with a token", Config{Repo: "git@git.example.com:x.git", CacheDir: cache, Auth: Auth{TokenFile: token, SSHKeyFile: key, KnownHostsFile: hosts}}, "does not apply"},
		{"https with an ssh key", Config{Repo: "https://git.example.com/x.git", CacheDir: cache, Auth: Auth{SSHKeyFile: key}}, "not an ssh URL"},
		{"token and basic auth", Config{Repo: "https://git.example.com/x.git", CacheDir: cache, Auth: Auth{TokenFile: token, BasicAuthFile: token}}, "not both"},
		{"token over http", Config{Repo: "http://git.example.com/x.git", CacheDir: cache, Auth: Auth{TokenFile: token}}, "in clear"},
		{"password in an http URL", Config{Repo: "http://me:hunter2@git.example.com/x.git", CacheDir: cache}, "in clear"},
		{"token over http to loopback", Config{Repo: "http://127.0.0.1:8080/x.git", CacheDir: cache, Auth: Auth{TokenFile: token}}, ""},
		{"anonymous http", Config{Repo: "http://git.example.com/x.git", CacheDir: cache}, ""},
		{"file URL", Config{Repo: "file:///srv/x.git", CacheDir: cache}, ""},
		{"file URL with a token", Config{Repo: "file:///srv/x.git", CacheDir: cache, Auth: Auth{TokenFile: token}}, "credentials do not apply"},
		{"missing token file", Config{Repo: "https://git.example.com/x.git", CacheDir: cache, Auth: Auth{TokenFile: token + ".gone"}}, "token.gone"},
		{"unknown scheme", Config{Repo: "ftp://git.example.com/x.git", CacheDir: cache}, `scheme "ftp"`},
		{"local path with a token", Config{Repo: local.dir, Auth: Auth{TokenFile: token}}, "remote URLs only"},
	}
	s := newSyncer(t, "x")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.cfg, s.Store, s.Schema, nil, nil)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrConfig with %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("the password is in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, ok := l.Source.(*RemoteGit)
			if !ok {
				t.Fatalf("source %s, want a remote Git source", l.Source)
			}
			if g.dir != filepath.Join(cache, "default") {
				t.Errorf("clone in %s, want %s", g.dir, filepath.Join(cache, "default"))
			}
		})
	}
	if s := NewRemoteGit("https://me:hunter2@git.example.com/x.git", "", cache, Auth{}).String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "@HEAD") {
		t.Errorf("String() = %q, want no password and the ref", s)
	}
}
