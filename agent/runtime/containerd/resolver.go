package containerd

import (
	"net/http"
	"sync"

	"github.com/containerd/containerd/v2/core/remotes/docker"

	"github.com/keelson/keelson/agent/registry"
)

// WithRegistries makes pulls follow the node's registries file: mirrors
// tried before a registry, plain HTTP only for endpoints it names with
// http://, and the TLS settings and credentials of each endpoint host.
func WithRegistries(c *registry.Config) Option { return func(r *Runtime) { r.hosts.cfg = c } }

// hosts turns the registries file into containerd's registry hosts. An
// HTTP client is kept per endpoint host, so pulls reuse connections.
type hosts struct {
	cfg     *registry.Config
	mu      sync.Mutex
	clients map[string]*http.Client
}

func (h *hosts) client(host string) *http.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[host]; ok {
		return c
	}
	if h.clients == nil {
		h.clients = map[string]*http.Client{}
	}
	c := &http.Client{Transport: docker.DefaultHTTPTransport(h.cfg.TLS(host))}
	h.clients[host] = c
	return c
}

// forCredential is where a pull goes with cred: each endpoint of the
// image's registry in order, authorised with the registries file's
// credential for that endpoint host, else with cred (a pod's pull secret
// for the registry, which its mirrors get too, as with containerd's CRI).
func (h *hosts) forCredential(cred registry.Credential) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		var out []docker.RegistryHost
		for _, ep := range h.cfg.Endpoints(host) {
			client := h.client(ep.Host)
			auth := docker.NewDockerAuthorizer(docker.WithAuthClient(client), docker.WithAuthCreds(func(string) (string, string, error) {
				if a := h.cfg.Auth(ep.Host); a != nil {
					return a.Credential()
				}
				if cred.IdentityToken != "" {
					return cred.Username, cred.IdentityToken, nil
				}
				return cred.Username, cred.Password, nil
			}))
			out = append(out, docker.RegistryHost{
				Client: client, Authorizer: auth,
				Host: ep.Host, Scheme: ep.Scheme, Path: ep.Path,
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			})
		}
		return out, nil
	}
}
