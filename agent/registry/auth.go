package registry

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Credential is what a pull presents to a registry.
type Credential struct {
	Username, Password string
	// IdentityToken is an OAuth2 refresh token, used instead of a password.
	IdentityToken string
	// From names where the credential came from (a Secret, the registries
	// file), for messages; never the secret itself.
	From string
}

// Credential returns the username and the secret (password, or identity
// token) of an Auth, decoding the base64 "auth" field when it is set.
func (a *Auth) Credential() (string, string, error) {
	user, pass := a.Username, a.Password
	if a.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return "", "", errors.New("auth: not base64")
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", "", errors.New("auth: not base64 of username:password")
		}
		user, pass = u, p
	}
	if a.IdentityToken != "" {
		return user, a.IdentityToken, nil
	}
	return user, pass, nil
}

// Keyring holds the credentials of a pod's image pull secrets, in order.
type Keyring struct {
	entries []keyEntry
}

type keyEntry struct {
	host string // host[:port], possibly with *. labels
	path string // repository path prefix, without leading slash
	cred Credential
}

// dockerConfigEntry is one registry's entry in a Docker config.
type dockerConfigEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// AddDockerConfigJSON adds the registries of a kubernetes.io/dockerconfigjson
// Secret's .dockerconfigjson ({"auths": {...}}); from names the Secret.
func (k *Keyring) AddDockerConfigJSON(data []byte, from string) error {
	var cfg struct {
		Auths map[string]dockerConfigEntry `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: .dockerconfigjson: %w", from, err)
	}
	return k.add(cfg.Auths, from)
}

// AddDockerCfg adds the registries of a kubernetes.io/dockercfg Secret's
// .dockercfg (the older format, without "auths").
func (k *Keyring) AddDockerCfg(data []byte, from string) error {
	var auths map[string]dockerConfigEntry
	if err := json.Unmarshal(data, &auths); err != nil {
		return fmt.Errorf("%s: .dockercfg: %w", from, err)
	}
	return k.add(auths, from)
}

func (k *Keyring) add(auths map[string]dockerConfigEntry, from string) error {
	var errs []error
	for _, key := range sortedKeys(auths) {
		e := auths[key]
		a := Auth{Username: e.Username, Password: e.Password, Auth: e.Auth, IdentityToken: e.IdentityToken}
		user, secret, err := a.Credential()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: registry %q: %w", from, key, err))
			continue
		}
		host, path, err := parseKey(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: registry %q: %w", from, key, err))
			continue
		}
		cred := Credential{Username: user, Password: secret, From: from}
		if e.IdentityToken != "" {
			cred = Credential{Username: user, IdentityToken: e.IdentityToken, From: from}
		}
		k.entries = append(k.entries, keyEntry{host: host, path: path, cred: cred})
	}
	return errors.Join(errs...)
}

// parseKey reads a Docker config's registry key: a host, a URL
// (https://index.docker.io/v1/) or a host with a repository path prefix.
func parseKey(key string) (string, string, error) {
	if !strings.Contains(key, "://") {
		key = "https://" + key
	}
	u, err := url.Parse(key)
	if err != nil || u.Host == "" {
		return "", "", errors.New("not a registry host or URL")
	}
	host := strings.ToLower(u.Host)
	path := strings.Trim(u.Path, "/")
	if path == "v1" || path == "v2" {
		path = ""
	}
	switch host {
	case "index.docker.io", dockerHubAPI:
		host = DockerHub
	}
	return host, path, nil
}

// Lookup returns the credentials for an image (a full reference: host,
// repository, tag or digest), most specific path first, in the order they
// were added otherwise.
func (k *Keyring) Lookup(host, repository string) []Credential {
	var matched []keyEntry
	for _, e := range k.entries {
		if hostMatches(e.host, host) && pathMatches(e.path, repository) {
			matched = append(matched, e)
		}
	}
	slices.SortStableFunc(matched, func(a, b keyEntry) int { return cmp.Compare(len(b.path), len(a.path)) })
	out := make([]Credential, len(matched))
	for i, e := range matched {
		out[i] = e.cred
	}
	return out
}

// hostMatches compares hosts label by label, where a key's * matches one
// label, as the kubelet's keyring does; ports must be equal.
func hostMatches(pattern, host string) bool {
	ph, pport, _ := strings.Cut(pattern, ":")
	hh, hport, _ := strings.Cut(strings.ToLower(host), ":")
	if pport != hport {
		return false
	}
	pl, hl := strings.Split(ph, "."), strings.Split(hh, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
	}
	return true
}

func pathMatches(prefix, repository string) bool {
	return prefix == "" || repository == prefix || strings.HasPrefix(repository, prefix+"/")
}
