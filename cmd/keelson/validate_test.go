package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runValidateCmd runs `keelson validate args…` in-process and returns its
// output and exit code.
func runValidateCmd(t testing.TB, args ...string) (string, int) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"validate"}, args...))
	err := cmd.ExecuteContext(t.Context())
	var ec exitCoder
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ec):
		return out.String(), ec.ExitCode()
	}
	t.Fatalf("error without exit code: %v", err)
	return "", 0
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	write("bad/web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: three\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n")
	write("bad/.keelsonignore", "ignored.yaml\n")
	write("bad/ignored.yaml", "broken: [")

	out, code := runValidateCmd(t, filepath.Join(dir, "good"))
	if code != 0 || !strings.Contains(out, "1 valid object(s) in 1 file(s), 0 problem(s)") {
		t.Errorf("valid dir: code %d, output:\n%s", code, out)
	}
	out, code = runValidateCmd(t, filepath.Join(dir, "good", "cm.yaml"), filepath.Join(dir, "bad"))
	want := filepath.Join(dir, "bad", "web.yaml") + `:5:13: Deployment default/web: spec.replicas: must be an integer, got "three"`
	if code != 1 || !strings.Contains(out, want+"\n") || strings.Contains(out, "ignored.yaml") {
		t.Errorf("invalid: code %d, output:\n%s\nwant line %s", code, out, want)
	}

	out, code = runValidateCmd(t, "-o", "json", filepath.Join(dir, "bad"))
	var report struct {
		Valid  bool
		Errors []struct {
			File, Path, Message string
			Line, Column        int
		}
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if code != 1 || report.Valid || len(report.Errors) != 1 || report.Errors[0].Path != "spec.replicas" || report.Errors[0].Line != 5 {
		t.Errorf("json: code %d, report %+v", code, report)
	}

	for _, args := range [][]string{{}, {"-o", "yaml", dir}, {"--no-such-flag", dir}, {filepath.Join(dir, "missing")}} {
		if _, code := runValidateCmd(t, args...); code != 2 {
			t.Errorf("validate %q: exit %d, want 2", args, code)
		}
	}
}
