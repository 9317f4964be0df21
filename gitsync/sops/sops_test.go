package sops_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/keelson/keelson/gitsync/sops"
)

const secretYAML = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: default
type: Opaque
stringData:
  password: hunter2-very-secret
data:
  token: c2VjcmV0LXRva2Vu
`

// newKey writes a fresh age identity to a key file and returns its path
// and recipient.
func newKey(t *testing.T) (file, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "age.key")
	if err := os.WriteFile(file, []byte("# a test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, id.Recipient().String()
}

func mustKeys(t *testing.T, files ...string) *sops.Keys {
	t.Helper()
	k, err := sops.LoadKeyFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRoundTrip: a Secret encrypted for the cluster's recipient keeps its
// names readable, hides its values, and decrypts to the same document.
func TestRoundTrip(t *testing.T) {
	file, recipient := newKey(t)
	keys := mustKeys(t, file)
	if got := keys.Recipients(); len(got) != 1 || got[0] != recipient {
		t.Fatalf("recipients %v, want [%s]", got, recipient)
	}
	enc, err := sops.EncryptSecret("db.yaml", []byte(secretYAML), keys.Recipients())
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"hunter2-very-secret", "c2VjcmV0LXRva2Vu"} {
		if bytes.Contains(enc, []byte(plain)) {
			t.Errorf("the encrypted file holds the value %q", plain)
		}
	}
	for _, readable := range []string{"name: db", "password:", "token:", "kind: Secret", recipient} {
		if !bytes.Contains(enc, []byte(readable)) {
			t.Errorf("the encrypted file does not show %q:\n%s", readable, enc)
		}
	}
	if !sops.IsEncrypted("db.yaml", enc) || sops.IsEncrypted("db.yaml", []byte(secretYAML)) {
		t.Error("IsEncrypted does not tell the encrypted file from the plain one")
	}
	plain, err := keys.Decrypt("db.yaml", enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"password: hunter2-very-secret", "token: c2VjcmV0LXRva2Vu", "name: db"} {
		if !bytes.Contains(plain, []byte(want)) {
			t.Errorf("decrypted file lacks %q:\n%s", want, plain)
		}
	}
	if bytes.Contains(plain, []byte("sops:")) {
		t.Errorf("decrypted file keeps the sops metadata:\n%s", plain)
	}
}

// TestRefusals: a file for another key, a changed value, a changed plain
// field, a file that is not encrypted; errors name the file, never a value.
func TestRefusals(t *testing.T) {
	file, _ := newKey(t)
	keys := mustKeys(t, file)
	other, _ := newKey(t)
	enc, err := sops.EncryptSecret("db.yaml", []byte(secretYAML), mustKeys(t, other).Recipients())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Decrypt("deploy/db.yaml", enc); !errors.Is(err, sops.ErrNoKey) || !strings.Contains(err.Error(), "deploy/db.yaml") {
		t.Errorf("a file for another key: %v, want ErrNoKey naming the file", err)
	}

	mine, err := sops.EncryptSecret("db.yaml", []byte(secretYAML), keys.Recipients())
	if err != nil {
		t.Fatal(err)
	}
	// Swap two encrypted values: each is still valid ciphertext, but bound
	// to its own path.
	lines := strings.Split(string(mine), "\n")
	var encLines []int
	for i, l := range lines {
		if strings.Contains(l, "ENC[AES256_GCM") && (strings.Contains(l, "password:") || strings.Contains(l, "token:")) {
			encLines = append(encLines, i)
		}
	}
	if len(encLines) != 2 {
		t.Fatalf("want 2 encrypted values, found %d:\n%s", len(encLines), mine)
	}
	a, b := lines[encLines[0]], lines[encLines[1]]
	ka, va, _ := strings.Cut(a, ": ")
	kb, vb, _ := strings.Cut(b, ": ")
	lines[encLines[0]], lines[encLines[1]] = ka+": "+vb, kb+": "+va
	swapped := []byte(strings.Join(lines, "\n"))
	renamed := bytes.Replace(mine, []byte("name: db"), []byte("name: dbx"), 1)
	for what, data := range map[string][]byte{"swapped values": swapped, "a changed name": renamed} {
		_, err := keys.Decrypt("db.yaml", data)
		if !errors.Is(err, sops.ErrTampered) {
			t.Errorf("%s: %v, want ErrTampered", what, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows a value: %v", what, err)
		}
	}
	if _, err := keys.Decrypt("db.yaml", []byte(secretYAML)); !errors.Is(err, sops.ErrNotEncrypted) {
		t.Errorf("a plain file: %v, want ErrNotEncrypted", err)
	}
}

// TestKeyFiles: rotation by adding a key (both open their files), and the
// errors of missing and bad key files, which show no key.
func TestKeyFiles(t *testing.T) {
	oldFile, oldRecipient := newKey(t)
	newFile, newRecipient := newKey(t)
	both := mustKeys(t, oldFile, newFile)
	for _, r := range []string{oldRecipient, newRecipient} {
		enc, err := sops.EncryptSecret("db.yaml", []byte(secretYAML), []string{r})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := both.Decrypt("db.yaml", enc); err != nil {
			t.Errorf("a file for %s with both keys: %v", r, err)
		}
	}
	if _, err := sops.LoadKeyFiles(filepath.Join(t.TempDir(), "missing.key")); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("a missing key file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("AGE-SECRET-KEY-1NOTAKEY\n"), 0o600)
	if _, err := sops.LoadKeyFiles(bad); err == nil || strings.Contains(err.Error(), "NOTAKEY") {
		t.Errorf("a bad key file: %v (must fail without showing the line)", err)
	}
}

// TestSopsCommandLine: what keelson writes the sops command line decrypts,
// and what the sops command line writes (YAML and JSON) keelson decrypts.
func TestSopsCommandLine(t *testing.T) {
	file, recipient := newKey(t)
	keys := mustKeys(t, file)
	dir := t.TempDir()
	bin := sopsCLI(t)
	sopsCmd := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SOPS_AGE_KEY_FILE="+file)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("sops %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}

	enc, err := sops.EncryptSecret("db.yaml", []byte(secretYAML), keys.Recipients())
	if err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "mine.yaml")
	os.WriteFile(mine, enc, 0o600)
	if out := sopsCmd("decrypt", mine); !bytes.Contains(out, []byte("password: hunter2-very-secret")) {
		t.Errorf("sops decrypt of keelson's file:\n%s", out)
	}

	plainYAML := filepath.Join(dir, "theirs.yaml")
	os.WriteFile(plainYAML, []byte(secretYAML), 0o600)
	theirs := sopsCmd("encrypt", "--age", recipient, "--encrypted-regex", sops.EncryptedRegex, plainYAML)
	if plain, err := keys.Decrypt("theirs.yaml", theirs); err != nil || !bytes.Contains(plain, []byte("hunter2-very-secret")) {
		t.Errorf("keelson's decryption of the sops command line's YAML: %v\n%s", err, plain)
	}
	plainJSON := filepath.Join(dir, "theirs.json")
	os.WriteFile(plainJSON, []byte(`{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2-very-secret"}}`), 0o600)
	theirs = sopsCmd("encrypt", "--age", recipient, plainJSON) // the whole file
	if plain, err := keys.Decrypt("theirs.json", theirs); err != nil || !bytes.Contains(plain, []byte("hunter2-very-secret")) {
		t.Errorf("keelson's decryption of the sops command line's JSON: %v\n%s", err, plain)
	}
}

// sopsVersion is the sops command line the tests check against: the
// version of the library keelson is built with.
const sopsVersion = "v3.13.3"

// sopsCLI builds the sops command line of sopsVersion from the Go module
// proxy (cached after the first time) and returns its path.
func sopsCLI(t *testing.T) string {
	t.Helper()
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "github.com/getsops/sops/v3/cmd/sops@"+sopsVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the sops command line %s: %v\n%s", sopsVersion, err, out)
	}
	return filepath.Join(gobin, "sops")
}
