package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// runCmd runs `keelson args…` in-process and returns its output and error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

// TestSecretCommands: the recipients of a key file, a Secret encrypted in
// place for them, which keelson validate checks without the key and whose
// values are gone from the file.
func TestSecretCommands(t *testing.T) {
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "age.key")
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	out, err := runCmd(t, "secret", "recipients", "--key-file", keyFile)
	if err != nil || strings.TrimSpace(out) != id.Recipient().String() {
		t.Fatalf("recipients: %q, %v; want %s", out, err, id.Recipient())
	}
	if strings.Contains(out, "AGE-SECRET-KEY") {
		t.Fatal("recipients printed the key")
	}
	recipients := filepath.Join(dir, "recipients")
	os.WriteFile(recipients, []byte("# the cluster\n"+out), 0o644)

	deploy := filepath.Join(dir, "deploy")
	os.MkdirAll(deploy, 0o755)
	secret := filepath.Join(deploy, "db.yaml")
	os.WriteFile(secret, []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: s3cr3t-value\n"), 0o644)
	if out, err := runCmd(t, "secret", "encrypt", "--recipients-file", recipients, "-i", secret); err != nil {
		t.Fatalf("encrypt: %v\n%s", err, out)
	}
	enc, _ := os.ReadFile(secret)
	if bytes.Contains(enc, []byte("s3cr3t-value")) || !bytes.Contains(enc, []byte("sops:")) || !bytes.Contains(enc, []byte("password:")) {
		t.Fatalf("the file after encrypt -i:\n%s", enc)
	}
	if out, code := runValidateCmd(t, deploy); code != 0 || strings.Contains(out, "s3cr3t") {
		t.Errorf("validate of the encrypted Secret: exit %d\n%s", code, out)
	}
	if _, err := runCmd(t, "secret", "encrypt", "--recipients-file", recipients, "-i", secret); err == nil || !strings.Contains(err.Error(), "already encrypted") {
		t.Errorf("encrypting twice: %v", err)
	}
	// No recipients given and no cluster to read them from.
	if _, err := runCmd(t, "secret", "encrypt", "--data-dir", dir, secret); err == nil || !strings.Contains(err.Error(), "admin.kubeconfig") || !strings.Contains(err.Error(), "or give --recipient") {
		t.Errorf("no recipients, no cluster: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# none yet\n"), 0o644)
	if _, err := runCmd(t, "secret", "encrypt", "--recipients-file", empty, secret); err == nil || !strings.Contains(err.Error(), empty+" holds no age recipient") {
		t.Errorf("an empty recipients file: %v", err)
	}
}
