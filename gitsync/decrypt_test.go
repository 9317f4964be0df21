package gitsync

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/gitsync/sops"
)

const dbSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: default
stringData:
  password: correct-horse-battery-staple
`

func ageKeys(t *testing.T) *sops.Keys {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "age.key")
	if err := os.WriteFile(f, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := sops.LoadKeyFiles(f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encryptFor(t *testing.T, k *sops.Keys, name, manifest string) string {
	t.Helper()
	enc, err := sops.EncryptSecret(name, []byte(manifest), k.Recipients())
	if err != nil {
		t.Fatal(err)
	}
	return string(enc)
}

// TestSyncDecrypts commits a Secret encrypted with sops to a real
// repository: the store gets its plain value. A file for another key, a
// tampered file, and (with requireEncryptedSecrets) a plain Secret are
// refused with nothing applied, and no status, error or log line carries
// the value.
func TestSyncDecrypts(t *testing.T) {
	ctx := t.Context()
	keys := ageKeys(t)
	r := newRepo(t)
	var logs strings.Builder
	s := newSyncer(t, "apps")
	s.Decryption, s.RequireEncryptedSecrets = keys, true
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}

	good := r.commit(map[string]string{"db.yaml": encryptFor(t, keys, "db.yaml", dbSecret), "cm.yaml": configMap("a", "1")})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var got corev1.Secret
	if err := s.Store.Get(ctx, "default", "db", &got); err != nil {
		t.Fatal(err)
	}
	// stringData is stored in data, as Kubernetes' API stores it.
	if v := string(got.Data["password"]); v != "correct-horse-battery-staple" || got.StringData != nil {
		t.Errorf("the stored Secret's data.password is %q, stringData %v", v, got.StringData)
	}

	other := ageKeys(t)
	steps := []struct {
		name, file, content, reason, want string
	}{
		{"a file for another key", "db.yaml", encryptFor(t, other, "db.yaml", dbSecret), ReasonDecryptionFailed, "db.yaml: cannot decrypt: no decryption key opens it"},
		{"a tampered file", "db.yaml", strings.Replace(encryptFor(t, keys, "db.yaml", dbSecret), "name: db", "name: db2", 1), ReasonDecryptionFailed, "db.yaml: cannot decrypt: its values do not match their MAC"},
		{"a plain Secret", "plain.yaml", strings.Replace(dbSecret, "name: db", "name: plain", 1), ReasonValidationFailed, "plain.yaml:1: Secret default/plain: not encrypted with sops"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			files := map[string]string{st.file: st.content, "cm.yaml": configMap("a", "2")}
			rev := r.commit(files)
			if err := l.SyncOnce(ctx); err == nil {
				t.Fatal("the revision was applied")
			}
			status := l.Status()
			if status.Reason != st.reason || status.LastAttempted.ID != rev || status.LastApplied.ID != good {
				t.Errorf("reason %s, attempted %s, applied %s; want %s, %s, %s", status.Reason, status.LastAttempted.ID, status.LastApplied.ID, st.reason, rev, good)
			}
			if len(status.Errors) == 0 || !strings.HasPrefix(status.Errors[0], st.want) {
				t.Errorf("errors %q, want one starting %q", status.Errors, st.want)
			}
			var cm corev1.ConfigMap
			if err := s.Store.Get(ctx, "default", "a", &cm); err != nil || cm.Data["key"] != "1" {
				t.Errorf("the revision's ConfigMap was written: %v %v", cm.Data, err)
			}
			out, _ := json.Marshal(status)
			if strings.Contains(string(out), "correct-horse") {
				t.Errorf("the status shows the value: %s", out)
			}
			r.commit(map[string]string{st.file: ""}) // back to the good files
		})
	}
	if strings.Contains(logs.String(), "correct-horse") {
		t.Errorf("the log shows the value:\n%s", logs.String())
	}
}

// TestSyncWithoutKeys: an encrypted file reaching a server without keys
// fails the revision, saying so.
func TestSyncWithoutKeys(t *testing.T) {
	r := newRepo(t)
	s := newSyncer(t, "apps")
	r.commit(map[string]string{"db.yaml": encryptFor(t, ageKeys(t), "db.yaml", dbSecret)})
	res, err := syncNow(t, s, NewLocalGit(r.dir, "main"))
	if err == nil || len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "db.yaml: encrypted with sops, but the server holds no decryption key") {
		t.Errorf("err %v, problems %v", err, res.Errors)
	}
}

// TestPlanEncryptedSecret: a plan of a change to a Secret encrypted with
// sops says which keys changed, with the key or without it (then from the
// ciphertexts), and never shows a value.
func TestPlanEncryptedSecret(t *testing.T) {
	keys := ageKeys(t)
	r := newRepo(t)
	base := r.commit(map[string]string{"deploy/db.yaml": encryptFor(t, keys, "db.yaml", dbSecret)})
	changed := strings.Replace(dbSecret, "password: correct-horse-battery-staple", "password: tr0ub4dor-and-3\n  user: admin-user-name", 1)
	head := r.commit(map[string]string{"deploy/db.yaml": encryptFor(t, keys, "db.yaml", changed)})
	for _, withKey := range []bool{true, false} {
		opts := PlanOptions{Schema: testSchema(t), Path: "deploy"}
		if withKey {
			opts.Decryption = keys
		}
		p, err := PlanGit(t.Context(), r.dir, base, head, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Errors) > 0 {
			t.Fatalf("with key %v: errors %v", withKey, p.Errors)
		}
		db := findObject(t, p, "Secret default/db")
		if db.Action != Update || db.SecretKeys == nil || !slices.Equal(db.SecretKeys.Added, []string{"user"}) || !slices.Equal(db.SecretKeys.Changed, []string{"password"}) {
			t.Errorf("with key %v: %s, keys %+v", withKey, db.Action, db.SecretKeys)
		}
		if !db.Encrypted {
			t.Errorf("with key %v: the Secret is not marked encrypted", withKey)
		}
		for _, r := range p.Risks {
			if r.Code == "plain-secret" {
				t.Errorf("with key %v: a Secret encrypted in Git is reported in clear: %+v", withKey, r)
			}
		}
		var out strings.Builder
		p.WriteText(&out, false)
		if !strings.Contains(out.String(), "(encrypted with sops in Git)") {
			t.Errorf("with key %v: the plan does not say the Secret is encrypted:\n%s", withKey, out.String())
		}
		j, _ := json.Marshal(p)
		for _, v := range []string{"correct-horse", "tr0ub4dor", "admin-user-name"} {
			if strings.Contains(out.String()+string(j), v) {
				t.Errorf("with key %v: the plan shows the value %q", withKey, v)
			}
		}
	}
}
