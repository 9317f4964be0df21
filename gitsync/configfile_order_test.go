package gitsync

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keelson/keelson/gitsync/notification"
	"github.com/keelson/keelson/store/etcdtest"
)

// configHead is the head every config file of these tests starts with.
const configHead = "apiVersion: keelson.dev/v1alpha1\nkind: ServerConfig\n"

// wantConfigErrors checks err against want, one entry a line of the error,
// in order: the text of an entry before "…" starts its line, and each part
// after one follows in that line.
func wantConfigErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("%v is not an ErrConfig", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		parts := strings.Split(w, "…")
		rest, ok := strings.CutPrefix(lines[i], parts[0])
		for _, part := range parts[1:] {
			if ok {
				_, rest, ok = strings.Cut(rest, part)
			}
		}
		if !ok {
			t.Errorf("error %d:\n %s\nwant\n %s", i, lines[i], w)
		}
	}
}

// sourceOrder is what the file says of a source's order and failures.
type sourceOrder struct {
	DependsOn []string
	Wait      bool
	Timeout   time.Duration
	Rollback  bool
}

func TestParseConfigFileDependencies(t *testing.T) {
	tests := []struct {
		name string
		file string
		want map[string]sourceOrder
	}{
		{"defaults", "sources:\n- name: a\n  url: /r\n", map[string]sourceOrder{"a": {}}},
		{"all set", `sources:
- name: infra
  url: /srv/infra
  wait: true
  timeout: 5m
  onFailure: rollback
- name: apps
  url: /srv/apps
  dependsOn: [infra]
  wait: true
  timeout: 90s
  onFailure: none
- name: edge
  url: /srv/edge
  dependsOn:
  - infra
  - apps
  timeout: 0s
`, map[string]sourceOrder{
			"infra": {Wait: true, Timeout: 5 * time.Minute, Rollback: true},
			"apps":  {DependsOn: []string{"infra"}, Wait: true, Timeout: 90 * time.Second},
			"edge":  {DependsOn: []string{"infra", "apps"}},
		}},
		{"dependency listed later", "sources:\n- name: a\n  url: /r\n  dependsOn: [b]\n- name: b\n  url: /s\n", map[string]sourceOrder{
			"a": {DependsOn: []string{"b"}}, "b": {},
		}},
		{"diamond", `sources:
- {name: top, url: /t, dependsOn: [left, right]}
- {name: left, url: /l, dependsOn: [base]}
- {name: right, url: /r, dependsOn: [base]}
- {name: base, url: /b}
`, map[string]sourceOrder{
			"top": {DependsOn: []string{"left", "right"}}, "left": {DependsOn: []string{"base"}},
			"right": {DependsOn: []string{"base"}}, "base": {},
		}},
		{"onFailure none without wait", "sources:\n- name: a\n  url: /r\n  onFailure: none\n", map[string]sourceOrder{"a": {}}},
		{"empty dependsOn", "sources:\n- name: a\n  url: /r\n  dependsOn: []\n", map[string]sourceOrder{"a": {DependsOn: []string{}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfgs, err := ParseConfigFile("k.yaml", []byte(configHead+tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]sourceOrder{}
			for _, c := range cfgs {
				got[c.Name] = sourceOrder{DependsOn: c.DependsOn, Wait: c.Wait, Timeout: c.Timeout, Rollback: c.Rollback}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParseConfigFileDependencyErrors(t *testing.T) {
	const two = "sources:\n- name: a\n  url: /r\n  dependsOn: [b]\n- name: b\n  url: /s\n  dependsOn: [a]\n"
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"unknown dependency", "sources:\n- name: a\n  url: /r\n  dependsOn: [nope]\n",
			[]string{`k.yaml:6:14: sources[0].dependsOn: "nope" is not the name of a source in this file`}},
		{"unknown dependency of the second source", "sources:\n- name: a\n  url: /r\n- name: b\n  url: /s\n  dependsOn:\n  - a\n  - nope\n",
			[]string{`k.yaml:9:3: sources[1].dependsOn: "nope" is not the name of a source in this file`}},
		{"cycle of two", two,
			[]string{"k.yaml:6:14: sources[0].dependsOn: sources depend on each other in a cycle: a → b → a"}},
		{"cycle of three", "sources:\n- {name: a, url: /r, dependsOn: [b]}\n- {name: b, url: /s, dependsOn: [c]}\n- {name: c, url: /t, dependsOn: [a]}\n",
			[]string{"k.yaml:4:33: sources[0].dependsOn: sources depend on each other in a cycle: a → b → c → a"}},
		{"cycle told at its first name, listed second", "sources:\n- name: b\n  url: /s\n  dependsOn: [a]\n- name: a\n  url: /r\n  dependsOn: [b]\n",
			[]string{"k.yaml:9:14: sources[1].dependsOn: sources depend on each other in a cycle: a → b → a"}},
		{"cycle behind a source off it", "sources:\n- {name: a, url: /r, dependsOn: [b]}\n- {name: b, url: /s, dependsOn: [c]}\n- {name: c, url: /t, dependsOn: [b]}\n",
			[]string{"k.yaml:5:33: sources[1].dependsOn: sources depend on each other in a cycle: b → c → b"}},
		{"depends on itself", "sources:\n- name: a\n  url: /r\n  dependsOn: [a]\n",
			[]string{"k.yaml:6:14: sources[0].dependsOn: sources depend on each other in a cycle: a → a"}},
		{"unknown dependency and a cycle", "sources:\n- name: a\n  url: /r\n  dependsOn: [b, x]\n- name: b\n  url: /s\n  dependsOn: [a]\n", []string{
			`k.yaml:6:14: sources[0].dependsOn: "x" is not the name of a source in this file`,
			"k.yaml:6:14: sources[0].dependsOn: sources depend on each other in a cycle: a → b → a",
		}},
		{"dependency checked beside another source's error", "sources:\n- {name: a, url: /r, interval: x}\n- {name: b, url: /s, dependsOn: [c]}\n", []string{
			`k.yaml:4:32: sources[0].interval: want a duration such as 30s, 5m or 1h, got "x"`,
			`k.yaml:5:33: sources[1].dependsOn: "c" is not the name of a source in this file`,
		}},
		{"dependency on a source with an error is no unknown name", "sources:\n- {name: a, url: /r, interval: x}\n- {name: b, url: /s, dependsOn: [a]}\n", []string{
			`k.yaml:4:32: sources[0].interval: want a duration such as 30s, 5m or 1h, got "x"`,
		}},
		{"empty dependency", "sources:\n- name: a\n  url: /r\n  dependsOn: [\"\"]\n",
			[]string{`k.yaml:6:15: sources[0].dependsOn[0]: empty: give a name`}},
		{"empty onFailure", "sources:\n- name: a\n  url: /r\n  onFailure: \"\"\n",
			[]string{`k.yaml:6:14: sources[0].onFailure: "": want one of rollback, none`}},
		{"dependsOn not a list", "sources:\n- name: a\n  url: /r\n  dependsOn: b\n",
			[]string{`k.yaml:6:14: sources[0].dependsOn: want a list of strings, got "b"`}},
		{"dependsOn item not a string", "sources:\n- name: a\n  url: /r\n  dependsOn: [[b]]\n",
			[]string{`k.yaml:6:15: sources[0].dependsOn[0]: want a string, got a list`}},
		{"rollback without wait", "sources:\n- name: a\n  url: /r\n  onFailure: rollback\n",
			[]string{"k.yaml:6:14: sources[0].onFailure: rollback needs wait: true"}},
		{"rollback with wait false", "sources:\n- name: a\n  url: /r\n  wait: false\n  onFailure: rollback\n",
			[]string{"k.yaml:7:14: sources[0].onFailure: rollback needs wait: true"}},
		{"unknown onFailure", "sources:\n- name: a\n  url: /r\n  wait: true\n  onFailure: retry\n",
			[]string{`k.yaml:7:14: sources[0].onFailure: "retry": want one of rollback, none`}},
		{"timeout not a duration", "sources:\n- name: a\n  url: /r\n  timeout: 5\n",
			[]string{`k.yaml:6:12: sources[0].timeout: want a duration such as 30s, 5m or 1h, got "5"`}},
		{"negative timeout", "sources:\n- name: a\n  url: /r\n  timeout: -1m\n",
			[]string{`k.yaml:6:12: sources[0].timeout: want a duration such as 30s, 5m or 1h, got "-1m"`}},
		{"wait not a bool", "sources:\n- name: a\n  url: /r\n  wait: yes\n",
			[]string{`k.yaml:6:9: sources[0].wait: want true or false, got "yes"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfigFile("k.yaml", []byte(configHead+tc.file))
			wantConfigErrors(t, err, tc.want)
		})
	}
}

const notifyConfigFile = configHead + `sources:
- name: apps
  url: ../deploy
- name: infra
  url: https://git.example.com/infra.git
notifications:
  link: https://keelson.example.com/syncs/{source}
  providers:
  - name: hook
    type: webhook
    address: https://hooks.example.com/keelson
    secretFile: secrets/hook.key
  - name: chat
    type: slack
    addressFile: /etc/keelson-secrets/slack.url
    severity: error
  - name: ci
    type: github
    address: https://github.example.com/api/v3
    tokenFile: github.token
    repository: example/deploy
    context: keelson/prod
    sources: [apps]
    severity: info
  - name: lab
    type: gitlab
    addressFile: ../shared/gitlab.url
    tokenFile: /run/secrets/../secrets/gitlab
    sources: [apps, infra]
`

func TestParseServerConfigNotifications(t *testing.T) {
	got, err := ParseServerConfig("/etc/keelson/keelson.yaml", []byte(notifyConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	want := Notifications{
		Link: "https://keelson.example.com/syncs/{source}",
		Providers: []notification.Provider{
			{Name: "hook", Type: notification.Webhook, Address: "https://hooks.example.com/keelson", SecretFile: "/etc/keelson/secrets/hook.key"},
			{Name: "chat", Type: notification.Slack, AddressFile: "/etc/keelson-secrets/slack.url", Severity: notification.SeverityError},
			{
				Name: "ci", Type: notification.GitHub, Address: "https://github.example.com/api/v3",
				TokenFile: "/etc/keelson/github.token", Repository: "example/deploy", Context: "keelson/prod",
				Sources: []string{"apps"}, Severity: notification.SeverityInfo,
			},
			{
				Name: "lab", Type: notification.GitLab, AddressFile: "/etc/shared/gitlab.url",
				TokenFile: "/run/secrets/gitlab", Sources: []string{"apps", "infra"},
			},
		},
	}
	if !reflect.DeepEqual(got.Notifications, want) {
		t.Errorf("notifications\n%+v\nwant\n%+v", got.Notifications, want)
	}
	if len(got.Sources) != 2 || got.Sources[0].Name != "apps" || got.Sources[0].Repo != "/etc/deploy" || got.Sources[1].Name != "infra" {
		t.Errorf("sources %+v", got.Sources)
	}
	srcs, err := ParseConfigFile("/etc/keelson/keelson.yaml", []byte(notifyConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(srcs, got.Sources) {
		t.Errorf("ParseConfigFile\n%+v\nwant the sources of ParseServerConfig\n%+v", srcs, got.Sources)
	}

	// A filter is checked against every source, wherever the file lists them.
	first := configHead + "notifications:\n  providers:\n  - {name: hook, type: webhook, address: https://h.example.com, sources: [b]}\nsources:\n- {name: a, url: /r}\n- {name: b, url: /s}\n"
	c, err := ParseServerConfig("k.yaml", []byte(first))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notifications.Providers) != 1 || !slices.Equal(c.Notifications.Providers[0].Sources, []string{"b"}) {
		t.Errorf("providers %+v", c.Notifications.Providers)
	}

	// Without notifications there are none.
	c, err = ParseServerConfig("k.yaml", []byte(configHead+"sources: [{name: a, url: /r}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Notifications, Notifications{}) {
		t.Errorf("notifications %+v, want none", c.Notifications)
	}
}

func TestParseServerConfigNotificationErrors(t *testing.T) {
	// The first provider's item starts at 8:5, its second field at line 9.
	const head = configHead + "sources:\n- name: apps\n  url: /r\nnotifications:\n  providers:\n"
	const webhook = "    type: webhook\n    address: https://hooks.example.com/k\n"
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"unknown type", "  - name: x\n    type: teams\n    address: https://hooks.example.com/k\n", []string{
			`k.yaml:9:11: notifications.providers[0].type: "teams": want one of webhook, slack, github, gitlab`,
		}},
		{"provider errors without the package's prefix", "  - name: ci\n    type: github\n", []string{
			`k.yaml:8:5: notifications.providers[0]: provider "ci": tokenFile: required for a github provider`,
		}},
		{"three of a name", "  - name: x\n" + webhook + "  - name: x\n" + webhook + "  - name: x\n" + webhook, []string{
			`k.yaml:11:5: notifications.providers[1].name: "x" is the name of the provider at line 8 too: names must differ`,
			`k.yaml:14:5: notifications.providers[2].name: "x" is the name of the provider at line 8 too: names must differ`,
		}},
		{"empty source in a filter", "  - name: x\n" + webhook + "    sources: [\"\"]\n", []string{
			`k.yaml:11:15: notifications.providers[0].sources[0]: empty: give a name`,
		}},
		{"unknown field", "  - name: x\n" + webhook + "    secret: s\n", []string{
			"k.yaml:11:5: notifications.providers[0].secret: unknown field; known fields here: address, addressFile, context, name, repository, secretFile, severity, sources, tokenFile, type",
		}},
		{"unknown notifications field", "  - name: x\n" + webhook + "  links: https://k.example.com\n", []string{
			"k.yaml:11:3: notifications.links: unknown field; known fields here: link, providers",
		}},
		{"duplicate names", "  - name: x\n" + webhook + "  - name: x\n" + webhook, []string{
			`k.yaml:11:5: notifications.providers[1].name: "x" is the name of the provider at line 8 too: names must differ`,
		}},
		{"github without tokenFile", "  - name: ci\n    type: github\n", []string{
			`k.yaml:8:5: notifications.providers[0]: …provider "ci": tokenFile: required for a github provider`,
		}},
		{"webhook without address", "  - name: x\n    type: webhook\n", []string{
			`k.yaml:8:5: notifications.providers[0]: …provider "x": address: required for a webhook provider (or addressFile)`,
		}},
		{"address and addressFile", "  - name: x\n" + webhook + "    addressFile: a.url\n", []string{
			`k.yaml:8:5: notifications.providers[0]: …provider "x": address, addressFile: set one, not both`,
		}},
		{"secretFile of slack", "  - name: x\n    type: slack\n    addressFile: a.url\n    secretFile: s\n", []string{
			`k.yaml:8:5: notifications.providers[0]: …provider "x": secretFile: only a webhook provider signs its requests`,
		}},
		{"no name", "  - type: webhook\n    address: https://hooks.example.com/k\n", []string{
			`k.yaml:8:5: notifications.providers[0]: …provider without a name: name: required`,
		}},
		{"filter names no source", "  - name: x\n" + webhook + "    sources: [apps, web]\n", []string{
			`k.yaml:11:14: notifications.providers[0].sources: "web" is not the name of a source in this file`,
		}},
		{"severity", "  - name: x\n" + webhook + "    severity: warn\n", []string{
			`k.yaml:11:15: notifications.providers[0].severity: "warn": want one of info, error`,
		}},
		{"providers not a list", "    name: x\n", []string{
			"k.yaml:8:5: notifications.providers: want a list of providers, got a mapping",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseServerConfig("k.yaml", []byte(head+tc.file))
			wantConfigErrors(t, err, tc.want)
		})
	}
}

func TestNewSyncsRefusesDependencyProblems(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfgs []Config
		want string // in the error; "" for none
	}{
		{"chain", []Config{{Name: "a", Repo: dir}, {Name: "b", Repo: dir, DependsOn: []string{"a"}}}, ""},
		{"on the unnamed source", []Config{{Repo: dir}, {Name: "b", Repo: dir, DependsOn: []string{"default"}}}, ""},
		{"unknown", []Config{{Name: "a", Repo: dir, DependsOn: []string{"nope"}}}, `source a depends on "nope", which is not a source here`},
		{"itself", []Config{{Name: "a", Repo: dir, DependsOn: []string{"a"}}}, "sources depend on each other in a cycle: a → a"},
		{"cycle", []Config{{Name: "a", Repo: dir, DependsOn: []string{"b"}}, {Name: "b", Repo: dir, DependsOn: []string{"a"}}}, "sources depend on each other in a cycle: a → b → a"},
	}
	st, sch := etcdtest.NewStore(t), testSchema(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSyncs(tc.cfgs, st, sch, nil, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := s.Names(); len(got) != len(tc.cfgs) {
					t.Errorf("names %v", got)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tc.want)
			}
			if s != nil {
				t.Errorf("a Syncs with the error")
			}
		})
	}
}

func TestSyncsReloadRefusesDependencyProblems(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := Config{Name: "a", Repo: dirA}
	b := Config{Name: "b", Repo: dirB, DependsOn: []string{"a"}}
	s, err := NewSyncs([]Config{a, b}, etcdtest.NewStore(t), testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runSyncs(t, s)
	running := func() map[string]*managed {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := map[string]*managed{}
		for name, m := range s.byName {
			if m.done != nil {
				out[name] = m
			}
		}
		return out
	}
	until(t, "both loops started", func() bool { return len(running()) == 2 })
	before := running()

	tests := []struct {
		name string
		cfgs []Config
		want string
	}{
		{"cycle", []Config{{Name: "a", Repo: dirA, DependsOn: []string{"b"}}, b}, "a → b → a"},
		{"itself", []Config{a, {Name: "b", Repo: dirB, DependsOn: []string{"b"}}}, "b → b"},
		{"unknown", []Config{a, {Name: "b", Repo: dirB, DependsOn: []string{"c"}}}, `depends on "c"`},
		{"dependency removed", []Config{b}, `depends on "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Reload(tc.cfgs)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tc.want)
			}
			if got := s.Names(); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("names %v", got)
			}
			if got, _ := s.Config("b"); !sameConfig(got, b) {
				t.Errorf("config of b %+v, want %+v", got, b)
			}
			after := running()
			for name, m := range before {
				select {
				case <-m.done:
					t.Errorf("loop %s stopped", name)
				default:
				}
				if after[name] != m {
					t.Errorf("loop %s replaced", name)
				}
			}
		})
	}

	// The same Syncs takes a list without problems.
	c := Config{Name: "c", Repo: t.TempDir(), DependsOn: []string{"a", "b"}}
	if err := s.Reload([]Config{a, b, c}); err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("names %v after a good reload", got)
	}
}

func TestFindCycle(t *testing.T) {
	tests := []struct {
		name string
		deps map[string][]string
		want []string
	}{
		{"none", nil, nil},
		{"no dependencies", map[string][]string{"a": nil, "b": nil}, nil},
		{"chain", map[string][]string{"a": {"b"}, "b": {"c"}, "c": nil}, nil},
		{"on a name that is no key", map[string][]string{"a": {"x"}}, nil},
		{"self loop", map[string][]string{"a": {"a"}}, []string{"a", "a"}},
		{"self loop of a later name", map[string][]string{"a": nil, "b": {"b"}}, []string{"b", "b"}},
		{"two", map[string][]string{"a": {"b"}, "b": {"a"}}, []string{"a", "b", "a"}},
		{"three", map[string][]string{"c": {"a"}, "a": {"b"}, "b": {"c"}}, []string{"a", "b", "c", "a"}},
		{"not reachable from the first name", map[string][]string{"a": {"b"}, "b": nil, "c": {"d"}, "d": {"c"}}, []string{"c", "d", "c"}},
		{"behind the first name", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"b"}}, []string{"b", "c", "b"}},
		{"diamond", map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": nil}, nil},
		{"diamond closed", map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {"a"}}, []string{"a", "b", "d", "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := findCycle(tc.deps); !slices.Equal(got, tc.want) {
				t.Errorf("findCycle(%v) = %v, want %v", tc.deps, got, tc.want)
			}
		})
	}
}
