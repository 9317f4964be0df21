package registry

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrConfig marks a registries file that cannot be used; the error says
// where and why.
var ErrConfig = errors.New("registry: invalid registries file")

// Config is a node's registries file. Its format is k3s' registries.yaml,
// so files written for k3s work unchanged:
//
//	mirrors:
//	  docker.io:
//	    endpoint: ["https://mirror.internal:5000"]
//	  registry.internal:5000:
//	    endpoint: ["http://registry.internal:5000"]   # plain HTTP, for this host only
//	configs:
//	  mirror.internal:5000:
//	    auth: {username: puller, password: secret}
//	    tls: {ca_file: /etc/keelson/mirror-ca.pem}
type Config struct {
	// Mirrors are the endpoints tried, in order, before a registry's own:
	// by registry host (docker.io, registry.internal:5000), or "*" for every
	// registry.
	Mirrors map[string]Mirror `yaml:"mirrors"`
	// Configs are the credentials and TLS settings of endpoints, by host.
	Configs map[string]HostConfig `yaml:"configs"`

	tls map[string]*tls.Config // built from Configs by Parse
}

// Mirror lists a registry's mirrors.
type Mirror struct {
	// Endpoints are URLs: scheme (https unless http is written, which is the
	// only way plain HTTP is used), host and an optional path prefix.
	Endpoints []string `yaml:"endpoint"`
}

// HostConfig is how to talk to one endpoint host.
type HostConfig struct {
	Auth *Auth     `yaml:"auth"`
	TLS  *TLSFiles `yaml:"tls"`
}

// Auth is a credential for a registry.
type Auth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Auth is base64 of username:password, as Docker's config.json keeps it.
	Auth string `yaml:"auth"`
	// IdentityToken is an OAuth2 refresh token, used instead of a password.
	IdentityToken string `yaml:"identity_token"`
}

// TLSFiles are the PEM files of an endpoint's TLS settings.
type TLSFiles struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Load reads and checks a registries file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return Parse(path, data)
}

// Parse checks a registries file's content; name is where it came from, for
// errors. Unknown fields are errors, so a misspelt key is not silently
// ignored.
func Parse(name string, data []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %s", ErrConfig, name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrConfig, name, fmt.Sprintf(format, args...)))
	}
	for _, host := range sortedKeys(c.Mirrors) {
		if host != "*" && !validHost(host) {
			bad("mirrors.%s: not a registry host (host or host:port)", host)
		}
		for i, ep := range c.Mirrors[host].Endpoints {
			if _, err := parseEndpoint(ep); err != nil {
				bad("mirrors.%s.endpoint[%d]: %v", host, i, err)
			}
		}
	}
	c.tls = map[string]*tls.Config{}
	for _, host := range sortedKeys(c.Configs) {
		hc := c.Configs[host]
		if !validHost(host) {
			bad("configs.%s: not a registry host (host or host:port)", host)
			continue
		}
		if hc.Auth != nil {
			if _, _, err := hc.Auth.Credential(); err != nil {
				bad("configs.%s.auth: %v", host, err)
			}
		}
		if hc.TLS != nil {
			t, err := hc.TLS.config()
			if err != nil {
				bad("configs.%s.tls: %v", host, err)
				continue
			}
			c.tls[host] = t
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validHost accepts host or host:port, without scheme or path.
func validHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/ \t@?#") {
		return false
	}
	u, err := url.Parse("https://" + h)
	return err == nil && u.Host == h && u.Hostname() != ""
}

// Endpoint is one place a registry's images are pulled from.
type Endpoint struct {
	// Scheme is https or http.
	Scheme string
	// Host is host or host:port.
	Host string
	// Path is the API's path, /v2 unless the mirror's URL names another.
	Path string
	// Mirror says the endpoint is a mirror, not the registry itself.
	Mirror bool
}

func parseEndpoint(s string) (Endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return Endpoint{}, fmt.Errorf("%q: want an http:// or https:// URL", s)
	case !validHost(u.Host):
		return Endpoint{}, fmt.Errorf("%q: no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return Endpoint{}, fmt.Errorf("%q: credentials, query and fragment belong elsewhere (configs.<host>.auth)", s)
	}
	path := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(path, "/v2") {
		path += "/v2"
	}
	return Endpoint{Scheme: u.Scheme, Host: u.Host, Path: path, Mirror: true}, nil
}

// Endpoints are where images of the registry host are pulled from, in the
// order to try them: its mirrors (or those of "*"), then the registry
// itself over HTTPS. Docker Hub's images come from registry-1.docker.io.
func (c *Config) Endpoints(host string) []Endpoint {
	var out []Endpoint
	if c != nil {
		m, ok := c.Mirrors[host]
		if !ok {
			m = c.Mirrors["*"]
		}
		for _, s := range m.Endpoints {
			ep, _ := parseEndpoint(s) // checked by Parse
			if ep.Host == host || (host == DockerHub && ep.Host == dockerHubAPI) {
				ep.Mirror = false // the registry itself, perhaps over plain HTTP
			}
			out = append(out, ep)
		}
	}
	self := Endpoint{Scheme: "https", Host: host, Path: "/v2"}
	if host == DockerHub {
		self.Host = dockerHubAPI
	}
	if !slices.ContainsFunc(out, func(e Endpoint) bool { return e.Host == self.Host && e.Path == self.Path }) {
		out = append(out, self)
	}
	return out
}

// DockerHub is the registry host of images named without one (busybox,
// library/busybox, docker.io/library/busybox).
const DockerHub = "docker.io"

const dockerHubAPI = "registry-1.docker.io"

// TLS is the TLS configuration for an endpoint host; nil for the defaults.
// Callers must not modify it.
func (c *Config) TLS(host string) *tls.Config {
	if c == nil {
		return nil
	}
	return c.tls[host]
}

// Auth is the registries file's credential for an endpoint host, if any.
func (c *Config) Auth(host string) *Auth {
	if c == nil {
		return nil
	}
	return c.Configs[host].Auth
}

func (f *TLSFiles) config() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // only when the file asks
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", f.CAFile)
		}
		t.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if f.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}
