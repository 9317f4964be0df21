package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  key: %q\n", name, value)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServerConfigTwoSourcesAndSyncNow runs keelson server --config with two
// repositories, then keelson sync now. The sync polls hourly and its
// repository does not move, so only the manual trigger can make it poll and
// put back a value changed behind Git's back (resync is on for every poll).
func TestServerConfigTwoSourcesAndSyncNow(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"apps", "infra"} {
		repo := filepath.Join(dir, "repo-"+name)
		gitRun(t, "", "init", "-q", "-b", "main", repo)
		commit(t, repo, "deploy/cm.yaml", configMapYAML("from-"+name, "git"), "start")
	}
	writeFile(t, filepath.Join(dir, "apps.secret"), "apps-secret\n")
	writeFile(t, filepath.Join(dir, "wrong.secret"), "guess\n")
	config := filepath.Join(dir, "keelson.yaml")
	writeFile(t, config, `apiVersion: keelson.dev/v1alpha1
kind: ServerConfig
sources:
- name: apps
  url: repo-apps
  ref: main
  path: deploy
  interval: 1h
  resync: 1ns
  webhook: {secretFile: apps.secret}
- name: infra
  url: repo-infra
  ref: {branch: main}
  path: deploy
  interval: 1h
`)
	data := filepath.Join(dir, "data")
	api, etcdClient := freeAddr(t), etcdtest.FreeURL(t)
	server := start(t, "server", "--data-dir", data, "--listen", api, "--config", config,
		"--etcd-listen-client", etcdClient, "--etcd-listen-peer", etcdtest.FreeURL(t))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server output:\n%s", server.out)
		}
	})
	readyz(t, server, api, http.StatusOK)

	withStore(t, etcdClient, func(st *store.Store) {
		value := func(name string) (string, string) {
			var cm corev1.ConfigMap
			if err := st.Get(t.Context(), "default", name, &cm); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return "", ""
				}
				t.Fatal(err)
			}
			return cm.Data["key"], cm.Labels["keelson.dev/source"]
		}
		eventuallyOut(t, "both sources synced", func() (string, bool) {
			a, sa := value("from-apps")
			i, si := value("from-infra")
			return fmt.Sprintf("%s/%s %s/%s", a, sa, i, si), a == "git" && sa == "apps" && i == "git" && si == "infra"
		})

		var cm corev1.ConfigMap
		if err := st.Get(t.Context(), "default", "from-apps", &cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["key"] = "drifted"
		if err := st.Update(t.Context(), &cm); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary, "sync", "now", "apps", "--config", config, "--data-dir", data).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `sync "apps" triggered`) {
			t.Fatalf("keelson sync now apps: %v\n%s", err, out)
		}
		eventuallyOut(t, "the drift put back after sync now", func() (string, bool) {
			v, _ := value("from-apps")
			return v, v == "git"
		})
	})

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown sync, from the config", []string{"nope", "--config", config}, `has no sync named "nope"; it has apps, infra`},
		{"unknown sync, on the server", []string{"nope", "--secret-file", filepath.Join(dir, "apps.secret")}, `has no sync named "nope"`},
		{"wrong secret", []string{"apps", "--secret-file", filepath.Join(dir, "wrong.secret")}, `the server refused the secret of sync "apps"`},
		{"sync without a secret, from the config", []string{"infra", "--config", config}, `sync "infra" has no webhook.secretFile`},
		{"sync without a secret, on the server", []string{"infra", "--secret-file", filepath.Join(dir, "apps.secret")}, "403 Forbidden"},
		{"no secret given", []string{"apps"}, "pass --secret-file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"sync", "now"}, tc.args...)
			out, err := exec.Command(binary, append(args, "--data-dir", data)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("keelson %s: %v\n%s\nwant an error with %q", strings.Join(args, " "), err, out, tc.want)
			}
		})
	}
	if code := server.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}

func TestServerConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "apiVersion: keelson.dev/v1alpha1\nkind: ServerConfig\nsources:\n- name: a\n  url: /srv\n  intervall: 1m\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"config and repo", []string{"--config", bad, "--repo", dir}, "--config and --repo both given"},
		{"bad config file", []string{"--config", bad}, bad + ":6:3: sources[0].intervall: unknown field"},
		{"missing config file", []string{"--config", filepath.Join(dir, "none.yaml")}, "none.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, append([]string{"server", "--data-dir", t.TempDir(), "--listen", freeAddr(t)}, tc.args...)...)
			if code := p.wait(t); code != 1 || !strings.Contains(p.out.String(), tc.want) {
				t.Fatalf("exit code %d, want 1 with %q:\n%s", code, tc.want, p.out)
			}
		})
	}
}

// TestServerConfigSuspendAndReload: a suspended source syncs nothing and
// refuses sync now; with suspend removed from the file, SIGHUP resumes it.
func TestServerConfigSuspendAndReload(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	commit(t, repo, "cm.yaml", configMapYAML("held", "git"), "start")
	writeFile(t, filepath.Join(dir, "hook.secret"), "s\n")
	config := filepath.Join(dir, "keelson.yaml")
	file := func(suspend bool) string {
		return fmt.Sprintf(`apiVersion: keelson.dev/v1alpha1
kind: ServerConfig
sources:
- name: apps
  url: repo
  suspend: %v
  webhook: {secretFile: hook.secret}
`, suspend)
	}
	writeFile(t, config, file(true))
	data := filepath.Join(dir, "data")
	api, etcdClient := freeAddr(t), etcdtest.FreeURL(t)
	server := start(t, "server", "--data-dir", data, "--listen", api, "--config", config,
		"--etcd-listen-client", etcdClient, "--etcd-listen-peer", etcdtest.FreeURL(t))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server output:\n%s", server.out)
		}
	})
	readyz(t, server, api, http.StatusOK)
	out, err := exec.Command(binary, "sync", "now", "apps", "--config", config, "--data-dir", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "409 Conflict") || !strings.Contains(string(out), `sync "apps" is suspended`) {
		t.Fatalf("sync now of a suspended sync: %v\n%s", err, out)
	}
	withStore(t, etcdClient, func(st *store.Store) {
		var cm corev1.ConfigMap
		if err := st.Get(t.Context(), "default", "held", &cm); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a suspended sync wrote held: %v", err)
		}
		writeFile(t, config, file(false))
		server.cmd.Process.Signal(syscall.SIGHUP)
		eventuallyOut(t, "resumed by SIGHUP", func() (string, bool) {
			err := st.Get(t.Context(), "default", "held", &cm)
			return fmt.Sprint(err), err == nil && cm.Data["key"] == "git"
		})
	})
	if !strings.Contains(server.out.String(), "config reloaded") {
		t.Errorf("no reload line in the log")
	}
	if code := server.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}
