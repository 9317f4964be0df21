package gitsync

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fullConfigFile = `apiVersion: keelson.dev/v1alpha1
kind: ServerConfig
sources:
- name: apps
  url: ../deploy
  ref: main
  path: clusters/prod
  interval: 1m
  resync: 0s
  targetNamespace: shop
  prune: false
  allowEmpty: true
  suspend: true
  auth:
    tokenFile: secrets/token
    sshKeyFile: /etc/keelson/id_ed25519
    knownHostsFile: known_hosts
  verify: {openpgpKeys: keys.asc}
  webhook: {secretFile: hook.secret}
- name: infra
  url: https://git.example.com/infra.git
  ref: {tag: v1.2}
- name: edge
  url: git@github.com:example/edge.git
  ref: {branch: release}
`

func TestParseConfigFile(t *testing.T) {
	got, err := ParseConfigFile("/etc/keelson/keelson.yaml", []byte(fullConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	want := []Config{
		{
			Name: "apps", Repo: "/etc/deploy", Ref: "main", Path: "clusters/prod",
			Interval: time.Minute, Resync: 0, TargetNamespace: "shop",
			Prune: false, AllowEmpty: true, Suspend: true,
			Auth: Auth{
				TokenFile:      "/etc/keelson/secrets/token",
				SSHKeyFile:     "/etc/keelson/id_ed25519",
				KnownHostsFile: "/etc/keelson/known_hosts",
			},
			VerifyKeysFile:    "/etc/keelson/keys.asc",
			WebhookSecretFile: "/etc/keelson/hook.secret",
		},
		{Name: "infra", Repo: "https://git.example.com/infra.git", Ref: "refs/tags/v1.2", Prune: true, Resync: DefaultResync},
		{Name: "edge", Repo: "git@github.com:example/edge.git", Ref: "refs/heads/release", Prune: true, Resync: DefaultResync},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseConfigFileErrors(t *testing.T) {
	const head = "apiVersion: keelson.dev/v1alpha1\nkind: ServerConfig\n"
	tests := []struct {
		name string
		file string
		want []string // each a line of the error, in order
	}{
		{"empty", "# nothing\n", []string{"k.yaml: file is empty"}},
		{"syntax", head + "sources:\n- name: a\n url: b\n", []string{"k.yaml:4: did not find expected key"}},
		{"not a mapping", "- a\n", []string{"k.yaml:1:1: want a mapping of apiVersion, kind, notifications, sources, got a list"}},
		{"no head", "sources: []\n", []string{"k.yaml:1:1: apiVersion and kind missing", "k.yaml:1:10: sources: empty"}},
		{"wrong apiVersion", "apiVersion: v1\nkind: ServerConfig\nsources: [{name: a, url: /r}]\n", []string{`k.yaml:1:13: apiVersion: "v1": want keelson.dev/v1alpha1`}},
		{"wrong kind", "apiVersion: keelson.dev/v1alpha1\nkind: Sync\nsources: [{name: a, url: /r}]\n", []string{`k.yaml:2:7: kind: "Sync": want ServerConfig`}},
		{"no sources", head, []string{"k.yaml:1:1: sources: missing"}},
		{"sources not a list", head + "sources: {name: a}\n", []string{"k.yaml:3:10: sources: want a list of sources, got a mapping"}},
		{"unknown field", head + "sources:\n- name: a\n  url: /r\n  intervall: 1m\n", []string{"k.yaml:6:3: sources[0].intervall: unknown field; known fields here: allowEmpty, auth, dependsOn, interval,"}},
		{"unknown nested field", head + "sources:\n- name: a\n  url: /r\n  auth:\n    password: x\n", []string{"k.yaml:7:5: sources[0].auth.password: unknown field; known fields here: basicAuthFile, knownHostsFile, sshKeyFile, tokenFile"}},
		{"field twice", head + "sources:\n- name: a\n  url: /r\n  url: /s\n", []string{"k.yaml:6:3: sources[0].url: set twice (first at line 5)"}},
		{"duplicate names", head + "sources:\n- name: a\n  url: /r\n- name: a\n  url: /s\n", []string{`k.yaml:6:3: sources[1].name: "a" is the name of the source at line 4 too`}},
		{"missing name and url", head + "sources:\n- path: x\n", []string{"k.yaml:4:3: sources[0].name: required", "k.yaml:4:3: sources[0].url: required"}},
		{"bad name", head + "sources:\n- name: a.b\n  url: /r\n", []string{`k.yaml:4:9: sources[0].name: "a.b": must be a label value without dots`}},
		{"bad duration", head + "sources:\n- name: a\n  url: /r\n  interval: 5\n  resync: -1m\n", []string{`k.yaml:6:13: sources[0].interval: want a duration such as 30s, 5m or 1h, got "5"`, `k.yaml:7:11: sources[0].resync: want a duration`}},
		{"bad bool", head + "sources:\n- name: a\n  url: /r\n  prune: yes\n", []string{`k.yaml:6:10: sources[0].prune: want true or false, got "yes"`}},
		{"bad namespace", head + "sources:\n- name: a\n  url: /r\n  targetNamespace: Shop\n", []string{`k.yaml:6:20: sources[0].targetNamespace: "Shop" is not a namespace name`}},
		{"string wanted", head + "sources:\n- name: a\n  url: [x]\n", []string{"k.yaml:5:8: sources[0].url: want a string, got a list"}},
		{"empty url", head + "sources:\n- name: a\n  url: \"\"\n", []string{"k.yaml:5:8: sources[0].url: empty: the repository"}},
		{"two refs", head + "sources:\n- name: a\n  url: /r\n  ref: {branch: main, tag: v1}\n", []string{"k.yaml:6:8: sources[0].ref: give one of branch, tag or commit"}},
		{"token and basic auth", head + "sources:\n- name: a\n  url: /r\n  auth: {tokenFile: t, basicAuthFile: b}\n", []string{"k.yaml:6:9: sources[0].auth: tokenFile and basicAuthFile both set"}},
		{"two documents", head + "sources: [{name: a, url: /r}]\n---\n" + head, []string{"k.yaml:4:1: a second document"}},
		{"source not a mapping", head + "sources:\n- /srv/repo\n", []string{`k.yaml:4:3: sources[0]: want a mapping of allowEmpty,`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfigFile("k.yaml", []byte(tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%v is not an ErrConfig", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d:\n %s\nwant it to start with\n %s", i, lines[i], w)
				}
			}
		})
	}
}

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keelson.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: keelson.dev/v1alpha1\nkind: ServerConfig\nsources:\n- name: a\n  url: repo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Repo != filepath.Join(dir, "repo") {
		t.Fatalf("got %+v, want one source at %s", got, filepath.Join(dir, "repo"))
	}
	if _, err := LoadConfigFile(filepath.Join(dir, "missing.yaml")); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxConfigFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfigFile(big); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "over") {
		t.Errorf("big file: %v", err)
	}
}

func FuzzParseConfigFile(f *testing.F) {
	f.Add([]byte(fullConfigFile))
	f.Add([]byte("apiVersion: keelson.dev/v1alpha1\nkind: ServerConfig\nsources: [{name: a, url: /r}, {name: a, url: /r}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("sources:\n- &s {name: a, url: r}\n- *s\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: keelson.dev/v1alpha1\nkind: ServerConfig\nsources:\n- {name: a, url: /r, dependsOn: [b], wait: true, onFailure: rollback, timeout: 1m}\n" +
		"- {name: b, url: /s, dependsOn: [a]}\nnotifications:\n  link: https://k/{source}\n  providers:\n  - {name: g, type: github, tokenFile: t, sources: [a, c], severity: error}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfgs, err := ParseConfigFile("/etc/k.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error is not an ErrConfig: %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "/etc/k.yaml") {
					t.Fatalf("error line without the file name: %q", line)
				}
			}
			return
		}
		if len(cfgs) == 0 {
			t.Fatal("no sources and no error")
		}
		seen := map[string]bool{}
		for _, c := range cfgs {
			if c.Name == "" || c.Repo == "" || seen[c.Name] {
				t.Fatalf("source without a name or url, or twice: %+v", c)
			}
			seen[c.Name] = true
			if !isRemoteURL(c.Repo) && !filepath.IsAbs(c.Repo) {
				t.Fatalf("relative path left: %q", c.Repo)
			}
		}
	})
}
