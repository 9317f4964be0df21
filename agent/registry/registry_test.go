package registry

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c, err := Parse("registries.yaml", []byte(`
mirrors:
  docker.io:
    endpoint: ["https://mirror.internal:5000/hub", "http://10.0.0.5:5000"]
  registry.internal:5000:
    endpoint: ["http://registry.internal:5000"]
  "*":
    endpoint: ["https://catchall.internal"]
configs:
  mirror.internal:5000:
    auth: {username: puller, password: s3cret}
    tls: {insecure_skip_verify: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{Scheme: "https", Host: "mirror.internal:5000", Path: "/hub/v2", Mirror: true},
		{Scheme: "http", Host: "10.0.0.5:5000", Path: "/v2", Mirror: true},
		{Scheme: "https", Host: "registry-1.docker.io", Path: "/v2"},
	}
	if got := c.Endpoints("docker.io"); !reflect.DeepEqual(got, want) {
		t.Errorf("docker.io endpoints %+v, want %+v", got, want)
	}
	// A registry named as its own mirror over http:// is the only way to
	// plain HTTP, and it is not tried again over HTTPS.
	want = []Endpoint{{Scheme: "http", Host: "registry.internal:5000", Path: "/v2"}}
	if got := c.Endpoints("registry.internal:5000"); !reflect.DeepEqual(got, want) {
		t.Errorf("registry.internal endpoints %+v, want %+v", got, want)
	}
	want = []Endpoint{{Scheme: "https", Host: "catchall.internal", Path: "/v2", Mirror: true}, {Scheme: "https", Host: "quay.io", Path: "/v2"}}
	if got := c.Endpoints("quay.io"); !reflect.DeepEqual(got, want) {
		t.Errorf("quay.io endpoints %+v, want %+v", got, want)
	}
	if a := c.Auth("mirror.internal:5000"); a == nil || a.Username != "puller" {
		t.Errorf("auth of the mirror: %+v", a)
	}
	if tc := c.TLS("mirror.internal:5000"); tc == nil || !tc.InsecureSkipVerify {
		t.Errorf("tls of the mirror: %+v", tc)
	}
	var none *Config
	if got := none.Endpoints("ghcr.io"); !reflect.DeepEqual(got, []Endpoint{{Scheme: "https", Host: "ghcr.io", Path: "/v2"}}) {
		t.Errorf("no registries file: %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field": {"mirrors:\n  docker.io:\n    endpoints: [https://m]\n", "line 3: field endpoints not found"},
		"bad scheme":    {"mirrors:\n  docker.io:\n    endpoint: [ftp://m]\n", `mirrors.docker.io.endpoint[0]: "ftp://m": want an http:// or https:// URL`},
		"no host":       {"mirrors:\n  docker.io:\n    endpoint: [\"https://\"]\n", `mirrors.docker.io.endpoint[0]: "https://": no host`},
		"user in url":   {"mirrors:\n  docker.io:\n    endpoint: [\"https://u:p@m\"]\n", "credentials, query and fragment belong elsewhere"},
		"bad mirror":    {"mirrors:\n  https://docker.io:\n    endpoint: []\n", "mirrors.https://docker.io: not a registry host"},
		"bad auth":      {"configs:\n  m:\n    auth: {auth: '!!'}\n", "configs.m.auth: auth: not base64"},
		"missing ca":    {"configs:\n  m:\n    tls: {ca_file: /nonexistent/ca.pem}\n", "configs.m.tls: open /nonexistent/ca.pem"},
		"half a pair":   {"configs:\n  m:\n    tls: {cert_file: /etc/hostname}\n", "cert_file and key_file go together"},
		"not a map":     {"- a\n", "cannot unmarshal !!seq"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("/etc/keelson/registries.yaml", []byte(tc.yaml))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/etc/keelson/registries.yaml: ") {
				t.Fatalf("got %v, want ErrConfig naming the file and %q", err, tc.want)
			}
		})
	}
	if c, err := Parse("empty", nil); err != nil || len(c.Endpoints("x.io")) != 1 {
		t.Fatalf("an empty file: %v", err)
	}
}

func TestKeyring(t *testing.T) {
	var k Keyring
	b64 := base64.StdEncoding.EncodeToString([]byte("encoded:pw"))
	if err := k.AddDockerConfigJSON([]byte(`{"auths": {
		"https://index.docker.io/v1/": {"username": "hub", "password": "h"},
		"registry.internal:5000": {"auth": "`+b64+`"},
		"registry.internal:5000/team": {"username": "team", "password": "t"},
		"*.example.com": {"username": "glob", "identitytoken": "tok"}
	}}`), "default/pull"); err != nil {
		t.Fatal(err)
	}
	if err := k.AddDockerCfg([]byte(`{"registry.internal:5000": {"username": "old", "password": "o"}}`), "default/old"); err != nil {
		t.Fatal(err)
	}
	users := func(cs []Credential) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Username+"@"+c.From)
		}
		return out
	}
	for _, tc := range []struct {
		host, repo string
		want       []string
	}{
		{"docker.io", "library/busybox", []string{"hub@default/pull"}},
		{"registry.internal:5000", "team/app", []string{"team@default/pull", "encoded@default/pull", "old@default/old"}},
		{"registry.internal:5000", "teams/app", []string{"encoded@default/pull", "old@default/old"}},
		{"registry.internal", "team/app", nil}, // the port must match
		{"eu.example.com", "app", []string{"glob@default/pull"}},
		{"a.eu.example.com", "app", nil}, // * is one label
	} {
		if got := users(k.Lookup(tc.host, tc.repo)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%s, %s) = %v, want %v", tc.host, tc.repo, got, tc.want)
		}
	}
	glob := k.Lookup("eu.example.com", "app")[0]
	if glob.IdentityToken != "tok" || glob.Password != "" {
		t.Errorf("identity token credential %+v", glob)
	}
	if got := k.Lookup("registry.internal:5000", "x")[0]; got.Password != "pw" {
		t.Errorf("base64 auth decoded to %+v", got)
	}
	if err := k.AddDockerConfigJSON([]byte(`{"auths": {"x.io": {"auth": "bm9jb2xvbg=="}}}`), "ns/bad"); err == nil || !strings.Contains(err.Error(), `ns/bad: registry "x.io": auth: not base64 of username:password`) {
		t.Errorf("bad auth: %v", err)
	}
	if err := k.AddDockerConfigJSON([]byte(`{`), "ns/broken"); err == nil || !strings.Contains(err.Error(), "ns/broken: .dockerconfigjson") {
		t.Errorf("broken JSON: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("mirrors:\n  docker.io:\n    endpoint: [\"https://m:5000/x\"]\nconfigs:\n  m:5000:\n    auth: {username: u, password: p}\n"))
	f.Add([]byte("mirrors: {\"*\": {endpoint: [\"http://h\"]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			return
		}
		for host := range c.Mirrors {
			if eps := c.Endpoints(host); len(eps) == 0 {
				t.Fatalf("no endpoint for %s", host)
			}
		}
	})
}

func FuzzKeyring(f *testing.F) {
	f.Add([]byte(`{"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}}`), "docker.io", "library/x")
	f.Fuzz(func(t *testing.T, data []byte, host, repo string) {
		var k Keyring
		_ = k.AddDockerConfigJSON(data, "fuzz")
		_ = k.AddDockerCfg(data, "fuzz")
		_ = k.Lookup(host, repo)
	})
}
