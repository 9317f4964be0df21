package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keelson/keelson/store/etcdtest"
)

// TestServerRemoteRepoFlags syncs a remote repository (a bare one served
// over file://) given by --repo, polled hourly, with a webhook secret from
// --webhook-secret-file: a push reaches the cluster when `keelson sync now`
// signs the same request a GitHub webhook would.
func TestServerRemoteRepoFlags(t *testing.T) {
	dir := t.TempDir()
	work, bare := filepath.Join(dir, "work"), filepath.Join(dir, "origin.git")
	gitRun(t, "", "init", "-q", "-b", "main", work)
	commit(t, work, "deploy/cm.yaml", configMapYAML("remote", "one"), "one")
	gitRun(t, "", "clone", "-q", "--bare", work, bare)
	writeFile(t, filepath.Join(dir, "hook.secret"), "s3cret\n")

	data := filepath.Join(dir, "data")
	api := freeAddr(t)
	server := start(t, "server", "--data-dir", data, "--listen", api, "--repo", "file://"+bare, "--ref", "main", "--path", "deploy",
		"--sync-interval", "1h", "--webhook-secret-file", filepath.Join(dir, "hook.secret"), "--sync-name", "origin",
		"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server output:\n%s", server.out)
		}
	})
	readyz(t, server, api, http.StatusOK)
	keelson := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--data-dir", data)...).CombinedOutput()
		return string(out), err
	}
	eventuallyOut(t, "the remote's first commit synced", func() (string, bool) {
		out, err := keelson("get", "configmap", "remote", "-o", "yaml")
		return out, err == nil && strings.Contains(out, `key: one`)
	})
	if out, _ := keelson("get", "syncs.keelson.dev", "origin", "-o", "yaml"); !strings.Contains(out, "url: file://"+bare) {
		t.Errorf("the Sync's spec:\n%s", out)
	}

	commit(t, work, "deploy/cm.yaml", configMapYAML("remote", "two"), "two")
	gitRun(t, work, "push", "-q", bare, "main")
	if out, err := keelson("sync", "now", "origin", "--secret-file", filepath.Join(dir, "wrong.secret")); err == nil {
		t.Errorf("sync now with a missing secret file succeeded:\n%s", out)
	}
	out, err := keelson("sync", "now", "origin", "--secret-file", filepath.Join(dir, "hook.secret"))
	if err != nil || !strings.Contains(out, `triggered`) {
		t.Fatalf("keelson sync now: %v\n%s", err, out)
	}
	eventuallyOut(t, "the pushed commit synced on the trigger (the poll is hourly)", func() (string, bool) {
		out, err := keelson("get", "configmap", "remote", "-o", "yaml")
		return out, err == nil && strings.Contains(out, `key: two`)
	})
}
