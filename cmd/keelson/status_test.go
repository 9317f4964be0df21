package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/store/etcdtest"
)

// TestSyncStatusThroughTheAPI: a server syncing a repository shows its Sync
// through the API — `keelson get syncs.keelson.dev -o yaml` (what kubectl
// prints), client-go's dynamic client, `keelson status` — and a broken
// commit appears there with its file:line while the applied revision stays.
func TestSyncStatusThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	commit(t, repo, "deploy/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: hello\n", "add the app's config")
	data := filepath.Join(dir, "server")
	api := freeAddr(t)
	p := start(t, "server", "--data-dir", data, "--listen", api, "--repo", repo, "--path", "deploy", "--sync-interval", "1s",
		"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t))
	defer p.stop(t)
	readyz(t, p, api, 200)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--data-dir", data)...).CombinedOutput()
		return string(out), err
	}
	eventuallyOut(t, "the Sync Ready in `keelson get syncs.keelson.dev`", func() (string, bool) {
		out, err := run("get", "syncs.keelson.dev")
		return out, err == nil && strings.Contains(out, "default") && strings.Contains(out, "True")
	})
	out, err := run("get", "syncs.keelson.dev", "default", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"apiVersion: keelson.dev/v1alpha1", "kind: Sync", "url: " + repo, "path: deploy",
		"message: add the app's config", "kind: ConfigMap", "name: app", "type: Ready", "reason: Succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("-o yaml lacks %q:\n%s", want, out)
		}
	}

	// client-go reads it as any custom resource.
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(data, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	u, err := dyn.Resource(schema.GroupVersionResource{Group: "keelson.dev", Version: "v1alpha1", Resource: "syncs"}).Get(t.Context(), "default", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	if rev, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision"); len(rev) != 40 {
		t.Errorf("dynamic client: lastAppliedRevision %q", rev)
	}

	commit(t, repo, "deploy/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata: 7\n", "a broken manifest")
	eventuallyOut(t, "`keelson status` to show the broken commit with file:line", func() (string, bool) {
		out, err := run("status")
		return out, err == nil && strings.Contains(out, "ValidationFailed") && strings.Contains(out, "deploy/broken.yaml:5") &&
			strings.Contains(out, `"add the app's config"`) && strings.Contains(out, `"a broken manifest"`)
	})
	out, _ = run("status", "default")
	for _, want := range []string{"Sync default: " + repo + ", path deploy", "Ready", "Stalled", "Applied", "Attempted", "Objects", "History:", "Succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("keelson status lacks %q:\n%s", want, out)
		}
	}
	if out, err := run("status", "nosuch"); err == nil || !strings.Contains(out, `no sync named "nosuch"`) {
		t.Errorf("keelson status of an unknown sync: %v\n%s", err, out)
	}
}
