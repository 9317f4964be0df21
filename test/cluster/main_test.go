package cluster_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/agent/runtime/containerdtest"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// binary is keelson, with keelson-logger beside it, built for the run.
var binary string

// busybox is an OCI archive of a busybox image, imported into every agent's
// containerd.
var busybox string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kcl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "keelson")
		if out, err := exec.Command("go", "build", "-o", binary, "github.com/keelson/keelson/cmd/keelson").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build keelson: %v\n%s", err, out)
			return 1
		}
		if _, err := containerdtest.BuildLogger(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		busybox = filepath.Join(dir, "busybox.tar")
		f, err := os.Create(busybox)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		err = ociarchive.BuildBusybox(f, "/bin/busybox", ociarchive.BusyboxRef)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "busybox image:", err)
			return 1
		}
		// Nothing a test starts (etcd, servers, agents, containerd,
		// shims, mounts) may outlive it.
		return containerdtest.Clean(m).Run()
	}()
	os.Exit(code)
}

// repo is a Git repository the servers sync, branch main.
type repo struct{ dir string }

func newRepo(t testing.TB) *repo {
	t.Helper()
	r := &repo{dir: filepath.Join(t.TempDir(), "repo")}
	r.git(t, "init", "-q", "-b", "main", r.dir)
	r.commit(t, "README", "the cluster\n", "start")
	return r
}

func (r *repo) git(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	if args[0] != "init" {
		cmd.Dir = r.dir
	}
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes one file and commits it; it returns the commit's hash.
func (r *repo) commit(t testing.TB, path, content, msg string) string {
	t.Helper()
	full := filepath.Join(r.dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	r.git(t, "add", path)
	r.git(t, "commit", "-q", "-m", msg)
	return r.git(t, "rev-parse", "HEAD")
}

// syncObject reads the Sync named default through the API.
func syncObject(t testing.TB, c kubernetes.Interface) (*keelsonv1alpha1.Sync, error) {
	t.Helper()
	b, err := c.Discovery().RESTClient().Get().AbsPath("/apis/keelson.dev/v1alpha1/syncs/default").DoRaw(t.Context())
	if err != nil {
		return nil, err
	}
	s := &keelsonv1alpha1.Sync{}
	return s, json.Unmarshal(b, s)
}
