package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCIScript runs examples/ci/keelson-plan.sh in dir with the test's
// keelson binary and returns the markdown it wrote and its exit code.
func runCIScript(t testing.TB, dir string, env ...string) (string, int) {
	t.Helper()
	script, err := filepath.Abs("../../examples/ci/keelson-plan.sh")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "plan.md")
	cmd := exec.Command(script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"KEELSON=" + binary, "PLAN_OUTPUT=" + out, "KEELSON_PATH=deploy"}, env...)...)
	log, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run the CI script: %v\n%s", err, log)
	}
	md, _ := os.ReadFile(out)
	t.Logf("script output:\n%s", log)
	return string(md), cmd.ProcessState.ExitCode()
}

// The CI example plans a pull request against its merge base: a change
// that landed on main after the branch was made is not the pull request's.
func TestPlanCIScript(t *testing.T) {
	web := planDeployment("web", 3, "localhost/web:1.4", "100m")
	repo := planRepoDir(t, map[string]string{"deploy/web.yaml": web, "deploy/api.yaml": planDeployment("api", 1, "localhost/api:1", "100m")},
		map[string]string{"deploy/web.yaml": strings.Replace(web, "web:1.4", "web:1.5", 1)})
	gitRun(t, repo, "checkout", "-q", "main")
	commit(t, repo, "deploy/api.yaml", planDeployment("api", 4, "localhost/api:1", "100m"), "main moves on")
	gitRun(t, repo, "checkout", "-q", "pr")

	md, code := runCIScript(t, repo, "REMOTE=", "TARGET_BRANCH=main")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, md)
	}
	if !strings.Contains(md, "## keelson plan") || !strings.Contains(md, "<code>~ Deployment shop/web</code>: rolling update of 3 pods, image localhost/web:1.4 → localhost/web:1.5") {
		t.Errorf("the markdown lacks the pull request's change:\n%s", md)
	}
	if strings.Contains(md, "api") {
		t.Errorf("the markdown shows main's own change, not the pull request's:\n%s", md)
	}

	// A CI checkout: a clone whose origin holds main, on the pull request's
	// branch, with a broken manifest.
	clone := filepath.Join(t.TempDir(), "clone")
	gitRun(t, "", "clone", "-q", "--branch", "pr", repo, clone)
	commit(t, clone, "deploy/web.yaml", strings.Replace(web, "replicas: 3", "replicas: three", 1), "broken")
	md, code = runCIScript(t, clone)
	if code != 2 || !strings.Contains(md, "Invalid") || !strings.Contains(md, "deploy/web.yaml:7") {
		t.Fatalf("an invalid change: exit %d, want 2 and the problem with file:line:\n%s", code, md)
	}
}
