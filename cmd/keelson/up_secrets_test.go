package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/apiserver"
)

// TestSecretsFromGitOnContainerd follows one secret value from an author's
// plain file to a container: keelson secret encrypt seals it for the
// recipients the cluster publishes, the sync decrypts it with the server's
// age key, the store seals it again in etcd, and the pod reads it from a
// tmpfs file. Then every way out of the cluster but the pod and an admin's
// read is searched for the value: keelson up's log, the Sync status,
// Events, keelson plan of a change to it, a reader without the secrets
// grant (get -o yaml and -o json), and every file of the data dir (etcd's
// database and log among them) but the pod's tmpfs.
func TestSecretsFromGitOnContainerd(t *testing.T) {
	u := newUpFixture(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ageKey := filepath.Join(u.dir, "age.key")
	writeTestFile(t, ageKey, id.String()+"\n")
	// An admin, and a viewer with no grant of secret values.
	tokens, viewerToken := filepath.Join(u.dir, "tokens.csv"), "viewer-"+rand.String(16)
	writeTestFile(t, tokens, fmt.Sprintf("admin-%s,%s,%s,%q\n%s,viewer,uid-viewer\n",
		rand.String(16), apiserver.AdminUser, apiserver.AdminUser, apiserver.GroupMasters, viewerToken))

	value := "s3cret-" + rand.String(20)
	changed := "s3cret-" + rand.String(20)
	commit(t, u.repo, "app/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: vault}\n", "vault")
	// The viewer reads everything but secret values, by a grant of the
	// authorization file.
	authz := filepath.Join(u.dir, "authz.yaml")
	writeTestFile(t, authz, "grants:\n- users: [viewer]\n  namespaces: [\"*\"]\n")
	up := u.start(t, u.repo, "--path", "app", "--decryption-key-file", ageKey, "--token-auth-file", tokens, "--authorization-file", authz)

	// The author encrypts for the cluster's recipients, read from it.
	var recipients string
	eventuallyOut(t, "keelson secret recipients", func() (string, bool) {
		out, err := exec.Command(binary, "secret", "recipients", "--data-dir", u.data).CombinedOutput()
		recipients = string(out)
		return recipients, err == nil
	})
	if strings.TrimSpace(recipients) != id.Recipient().String() {
		t.Fatalf("the cluster's recipients %q, want %s", recipients, id.Recipient())
	}
	writeSecret := func(repo, v string) {
		t.Helper()
		secretFile := filepath.Join(repo, "app", "db-secret.yaml")
		writeTestFile(t, secretFile, "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: vault}\nstringData:\n  password: "+v+"\n")
		if out, err := exec.Command(binary, "secret", "encrypt", "--in-place", "--data-dir", u.data, secretFile).CombinedOutput(); err != nil {
			t.Fatalf("keelson secret encrypt: %v\n%s", err, out)
		}
		if b, _ := os.ReadFile(secretFile); leaksValue(b, v) {
			t.Fatalf("the encrypted file shows the value:\n%s", b)
		}
	}
	writeSecret(u.repo, value)
	writeTestFile(t, filepath.Join(u.repo, "app", "reader.yaml"), readerYAML)
	gitRun(t, u.repo, "add", "app")
	gitRun(t, u.repo, "commit", "-q", "-m", "the db password, encrypted, and a pod reading it")

	u.waitPods(t, up, 1)
	sum := sha256.Sum256([]byte(value))
	eventuallyOut(t, "the pod's view of its secret", func() (string, bool) {
		out, err := u.keelson("logs", "-n", "vault", "reader")
		return out, err == nil && strings.Contains(out, hex.EncodeToString(sum[:])+"  /etc/db/password") &&
			strings.Contains(out, " /etc/db tmpfs ")
	})
	// The search below must be able to find the value: an admin reads it.
	if out, err := u.keelson("get", "secret", "db", "-n", "vault", "-o", "yaml"); err != nil || !leaksValue([]byte(out), value) {
		t.Fatalf("an admin's keelson get secret -o yaml lacks the value (%v):\n%s", err, out)
	}

	// A change to the value on a branch (the synced HEAD stays), planned
	// before it is merged: which keys changed, not their values.
	branch := filepath.Join(u.dir, "rotate")
	gitRun(t, u.repo, "worktree", "add", "-q", "-b", "rotate", branch)
	writeSecret(branch, changed)
	gitRun(t, branch, "commit", "-q", "-am", "a new db password")
	server := kubeServer(t, u)
	plan, err := exec.Command(binary, "plan", "--server", server, "--kubeconfig", adminKubeconfig(u.data),
		"--repo", u.repo, "--head", "rotate", "--path", "app", "--decryption-key-file", ageKey).CombinedOutput()
	// Exit status 1: changes, as flux diff says.
	if code := exitCode(err); code != 1 || !strings.Contains(string(plan), "secret keys changed: password (encrypted with sops in Git)") ||
		strings.Contains(string(plan), "WARNING") {
		t.Fatalf("keelson plan of the change (exit %d, %v):\n%s", code, err, plan)
	}

	// A revision whose Secret is refused: the error names the file and the
	// field, not the value.
	bad := "not-base64 " + rand.String(20)
	commit(t, u.repo, "app/token.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: vault}\ndata:\n  token: "+bad+"\n", "a token, badly encoded")
	eventuallyOut(t, "the refused revision in keelson status", func() (string, bool) {
		out, err := u.keelson("status")
		return out, err == nil && strings.Contains(out, "app/token.yaml:5:10: Secret vault/token: data.token: must be base64-encoded")
	})

	viewer := filepath.Join(u.dir, "viewer.kubeconfig")
	ca, err := os.ReadFile(apiserver.TLSFilesIn(u.data).CACert)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := apiserver.Kubeconfig(server, ca, "viewer", viewerToken)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, viewer, string(kc))
	outputs := map[string]string{"keelson plan": string(plan)}
	for name, args := range map[string][]string{
		"keelson status":               {"status", "--kubeconfig", adminKubeconfig(u.data)},
		"keelson get events":           {"get", "events", "-A", "-o", "yaml", "--kubeconfig", adminKubeconfig(u.data)},
		"keelson describe secret":      {"describe", "secret", "db", "-n", "vault", "--kubeconfig", adminKubeconfig(u.data)},
		"viewer's get secret -o yaml":  {"get", "secret", "db", "-n", "vault", "-o", "yaml", "--kubeconfig", viewer},
		"viewer's get secrets -o json": {"get", "secrets", "-A", "-o", "json", "--kubeconfig", viewer},
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		outputs[name] = string(out)
	}
	if d := outputs["keelson describe secret"]; !strings.Contains(d, fmt.Sprintf("password:\t%d bytes", len(changed))) && !strings.Contains(d, fmt.Sprintf("password:\t%d bytes", len(value))) {
		t.Errorf("keelson describe secret does not give the value's size:\n%s", d)
	}
	if !strings.Contains(outputs["viewer's get secret -o yaml"], "password") {
		t.Errorf("the viewer does not see the secret's keys:\n%s", outputs["viewer's get secret -o yaml"])
	}
	outputs["keelson up's output"] = up.out.String()
	for name, out := range outputs {
		if leaksValue([]byte(out), value) || leaksValue([]byte(out), changed) || strings.Contains(out, bad) {
			t.Errorf("%s shows the secret's value:\n%s", name, out)
		}
	}

	// Every file of the data dir, etcd's among them, but the pod's tmpfs.
	tmpfs := tmpfsMounts(t)
	files := 0
	err = filepath.WalkDir(u.data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file gone meanwhile
		}
		if d.IsDir() && tmpfs[path] {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		files++
		if leaksValue(b, value) {
			t.Errorf("%s holds the secret's value", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("searched %d files of the data dir", files)
	if _, err := os.Stat(filepath.Join(u.data, "etcd", "member", "snap", "db")); err != nil {
		t.Errorf("etcd's database was not among them: %v", err)
	}
}

const readerYAML = `apiVersion: v1
kind: Pod
metadata: {name: reader, namespace: vault}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: ` + ociarchive.BusyboxRef + `
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "grep ' /etc/db ' /proc/mounts; sha256sum /etc/db/password; sleep 3600"]
    volumeMounts: [{name: db, mountPath: /etc/db}]
  volumes: [{name: db, secret: {secretName: db}}]
`

// leaksValue says whether b holds v, plain or in base64 (how JSON and YAML
// carry a Secret's data).
func leaksValue(b []byte, v string) bool {
	return bytes.Contains(b, []byte(v)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(v))))
}

// tmpfsMounts lists the mount points of tmpfs file systems.
func tmpfsMounts(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 2 && fields[2] == "tmpfs" {
			out[fields[1]] = true
		}
	}
	return out
}

// kubeServer is the API's URL in the admin kubeconfig.
func kubeServer(t *testing.T, u *upFixture) string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(u.data))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Host
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// exitCode is a command's exit status from its error (0 for none).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
