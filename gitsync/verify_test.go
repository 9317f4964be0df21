package gitsync

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// newSigner makes an OpenPGP key pair; Ed25519 keeps it quick.
func newSigner(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writeKeys writes the armored public keys of signers to a file.
func writeKeys(t *testing.T, signers ...*openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range signers {
		if err := e.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "keys.asc")
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// commitSigned writes files and commits them signed by key.
func (r *testRepo) commitSigned(files map[string]string, key *openpgp.Entity) string {
	r.t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	r.n++
	h, err := wt.Commit(fmt.Sprintf("signed change %d", r.n), &git.CommitOptions{
		Author:  &object.Signature{Name: "Dev", Email: "dev@example.com", When: time.Unix(1_700_000_000+int64(r.n), 0)},
		SignKey: key,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// TestVerifyCommits applies only commits signed by a trusted key, from a
// local repository and from a remote one.
func TestVerifyCommits(t *testing.T) {
	trusted, stranger := newSigner(t, "release"), newSigner(t, "stranger")
	keys := writeKeys(t, trusted)
	for _, mode := range []string{"local", "remote"} {
		t.Run(mode, func(t *testing.T) {
			r := newRepo(t)
			good := r.commitSigned(map[string]string{"a.yaml": configMap("a", "1")}, trusted)
			s := newSyncer(t, "apps")
			cfg := Config{Name: "apps", Repo: r.dir, Ref: "main", VerifyKeysFile: keys, Prune: true}
			if mode == "remote" {
				cfg.Repo, cfg.CacheDir = "file://"+r.dir, t.TempDir()
			}
			l, err := New(cfg, s.Store, s.Schema, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SyncOnce(t.Context()); err != nil {
				t.Fatalf("signed by a trusted key: %v", err)
			}
			if st := l.Status(); st.LastApplied.ID != good || configValue(t, l.Syncer, "a") != "1" {
				t.Fatalf("signed commit not applied: %+v", st)
			}

			unsigned := r.commit(map[string]string{"a.yaml": configMap("a", "unsigned")})
			err = l.SyncOnce(t.Context())
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), unsigned) || !strings.Contains(err.Error(), "not signed") {
				t.Fatalf("unsigned commit: err = %v, want ErrVerify naming %s as not signed", err, unsigned)
			}
			if st := l.Status(); st.Reason != ReasonVerificationFailed || st.LastApplied.ID != good || st.LastAttempted.ID != unsigned || configValue(t, l.Syncer, "a") != "1" {
				t.Errorf("unsigned commit changed the cluster: %+v", st)
			}

			foreign := r.commitSigned(map[string]string{"a.yaml": configMap("a", "foreign")}, stranger)
			err = l.SyncOnce(t.Context())
			fp := fmt.Sprintf("%X", stranger.PrimaryKey.Fingerprint)
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), foreign) || !strings.Contains(err.Error(), fp) {
				t.Fatalf("commit by an unknown key: err = %v, want ErrVerify naming %s and key %s", err, foreign, fp)
			}
			if configValue(t, l.Syncer, "a") != "1" {
				t.Error("a commit by an unknown key was applied")
			}
			t.Log(err)

			fixed := r.commitSigned(map[string]string{"a.yaml": configMap("a", "2")}, trusted)
			if err := l.SyncOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
			if st := l.Status(); st.LastApplied.ID != fixed || configValue(t, l.Syncer, "a") != "2" {
				t.Errorf("signed fix not applied: %+v", st)
			}
		})
	}
}

func TestVerifyConfig(t *testing.T) {
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	keys := writeKeys(t, newSigner(t, "release"))
	junk := filepath.Join(t.TempDir(), "junk.asc")
	if err := os.WriteFile(junk, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"plain directory", Config{Repo: t.TempDir(), VerifyKeysFile: keys}, "plain directory"},
		{"missing keys file", Config{Repo: r.dir, VerifyKeysFile: keys + ".gone"}, "verify keys file"},
		{"not keys", Config{Repo: r.dir, VerifyKeysFile: junk}, "not armored OpenPGP public keys"},
	}
	s := newSyncer(t, "x")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, s.Store, s.Schema, nil, nil)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tc.wantErr)
			}
		})
	}
}
