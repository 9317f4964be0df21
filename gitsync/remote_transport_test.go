package gitsync

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestRemoteHTTP syncs over Git's smart HTTP protocol, and checks that a poll
// that finds the ref where it was only lists refs: no pack is asked for.
func TestRemoteHTTP(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	var packs atomic.Int32
	url, srv := serveHTTP(t, r.dir, httpServer{packs: &packs})
	l := &Loop{Source: newRemote(t, url, "main"), Syncer: newSyncer(t, "apps")}

	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.LastApplied.ID != c1 || configValue(t, l.Syncer, "a") != "1" {
		t.Fatalf("first sync: %+v", st)
	}
	first := packs.Load()
	if first == 0 {
		t.Fatal("the first sync fetched no pack")
	}
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := packs.Load(); n != first {
		t.Errorf("an unchanged poll fetched %d packs", n-first)
	}
	c2 := r.commit(map[string]string{"a.yaml": configMap("a", "2")})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.LastApplied.ID != c2 || configValue(t, l.Syncer, "a") != "2" || packs.Load() == first {
		t.Errorf("after a new commit: %+v, %d packs", st, packs.Load())
	}

	// A force push over HTTP into the shallow clone.
	r.resetHard(c1)
	c3 := r.commit(map[string]string{"a.yaml": configMap("a", "3")})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("after a force push: %v", err)
	}
	if st := l.Status(); st.LastApplied.ID != c3 || configValue(t, l.Syncer, "a") != "3" {
		t.Fatalf("after a force push: %+v", st)
	}

	srv.Close()
	r.commit(map[string]string{"a.yaml": configMap("a", "4")})
	err := l.SyncOnce(t.Context())
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("server gone: err = %v, want ErrFetch saying it cannot be reached", err)
	}
	if st := l.Status(); st.Reason != ReasonFetchFailed || st.LastApplied.ID != c3 || configValue(t, l.Syncer, "a") != "3" {
		t.Errorf("an unreachable server changed the cluster: %+v", st)
	}
}

func TestRemoteHTTPAuth(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	const password, token = "pa55-word", "tok-123456"
	url, _ := serveHTTP(t, r.dir, httpServer{allow: func(user, pass string) bool {
		return user == "deploy" && pass == password || user == TokenUsername && pass == token
	}})
	secret := func(content string) string {
		f := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(f, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name    string
		auth    Auth
		wantErr string
	}{
		{"basic auth", Auth{BasicAuthFile: secret("deploy:" + password)}, ""},
		{"token", Auth{TokenFile: secret(token)}, ""},
		{"no credentials", Auth{}, "authentication"},
		{"wrong password", Auth{BasicAuthFile: secret("deploy:nope-" + password)}, "authentication"},
		{"wrong token", Auth{TokenFile: secret("nope-" + token)}, "authentication"},
		{"malformed basic auth", Auth{BasicAuthFile: secret(password)}, "username:password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := NewRemoteGit(url, "main", filepath.Join(t.TempDir(), "cache"), tc.auth)
			rev, err := src.Resolve(t.Context())
			if tc.wantErr == "" {
				if err != nil || rev.ID != c1 {
					t.Fatalf("resolve = %s, %v; want %s", rev.ID, err, c1)
				}
				return
			}
			if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrFetch with %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), token) {
				t.Errorf("a secret is in the error: %v", err)
			}
			t.Log(err)
		})
	}

	t.Run("rotated token", func(t *testing.T) {
		file := secret("old-" + token)
		src := NewRemoteGit(url, "main", filepath.Join(t.TempDir(), "cache"), Auth{TokenFile: file})
		if _, err := src.Resolve(t.Context()); !errors.Is(err, ErrFetch) {
			t.Fatalf("old token: err = %v, want ErrFetch", err)
		}
		if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		if rev, err := src.Resolve(t.Context()); err != nil || rev.ID != c1 {
			t.Fatalf("after the token file was replaced: %s, %v", rev.ID, err)
		}
	})
}

func TestRemoteSSH(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	srv := serveSSH(t)
	url := "ssh://git@" + srv.addr + r.dir
	trusted := knownHosts(t, srv.addr, srv.hostKey)
	otherPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ssh.NewPublicKey(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	_, strangerPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	strangerKey := writeSSHKey(t, strangerPriv)

	t.Run("trusted host", func(t *testing.T) {
		s := newSyncer(t, "apps")
		l, err := New(Config{Name: "apps", Repo: url, Ref: "main", CacheDir: t.TempDir(),
			Auth: Auth{SSHKeyFile: srv.keyFile, KnownHostsFile: trusted}}, s.Store, s.Schema, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.SyncOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := l.Status(); st.LastApplied.ID != c1 || configValue(t, l.Syncer, "a") != "1" {
			t.Fatalf("sync over ssh: %+v", st)
		}
		c2 := r.commit(map[string]string{"a.yaml": configMap("a", "2")})
		if err := l.SyncOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := l.Status(); st.LastApplied.ID != c2 || configValue(t, l.Syncer, "a") != "2" {
			t.Fatalf("after a new commit: %+v", st)
		}
	})
	refused := []struct {
		name    string
		auth    Auth
		wantErr string
	}{
		{"changed host key", Auth{SSHKeyFile: srv.keyFile, KnownHostsFile: knownHosts(t, srv.addr, otherKey)}, "host key differs"},
		{"unknown host", Auth{SSHKeyFile: srv.keyFile, KnownHostsFile: knownHosts(t, "git.example.com:22", srv.hostKey)}, "host key is not in known_hosts"},
		{"unauthorized client key", Auth{SSHKeyFile: strangerKey, KnownHostsFile: trusted}, "authentication refused"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			src := NewRemoteGit(url, "main", filepath.Join(t.TempDir(), "cache"), tc.auth)
			_, err := src.Resolve(t.Context())
			if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrFetch with %q", err, tc.wantErr)
			}
			t.Log(err)
		})
	}
	t.Run("no known_hosts file", func(t *testing.T) {
		s := newSyncer(t, "apps")
		_, err := New(Config{Repo: url, CacheDir: t.TempDir(), Auth: Auth{SSHKeyFile: srv.keyFile}}, s.Store, s.Schema, nil, nil)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "known_hosts file") {
			t.Fatalf("err = %v, want ErrConfig asking for a known_hosts file", err)
		}
	})
}
