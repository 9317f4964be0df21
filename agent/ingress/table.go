package ingress

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keelson/keelson/internal/ingressclass"
)

// Reasons of the Warning Events the proxy records on Ingresses.
const (
	// ReasonBackendNotFound: a backend's Service, or its port, does not
	// exist; requests routed to it get 503.
	ReasonBackendNotFound = "BackendNotFound"
	// ReasonBackendNotSupported: a resource backend, or a Service of type
	// ExternalName; requests routed to it get 503.
	ReasonBackendNotSupported = "BackendNotSupported"
	// ReasonInvalidRule: a host or path the proxy cannot serve; the rule
	// is skipped.
	ReasonInvalidRule = "InvalidRule"
	// ReasonRuleConflict: an older Ingress already serves the same host,
	// path and path type; this one's rule is skipped.
	ReasonRuleConflict = "RuleConflict"
	// ReasonTLSSecretNotFound: a TLS entry's Secret does not exist; its
	// hosts get the proxy's self-signed default certificate.
	ReasonTLSSecretNotFound = "TLSSecretNotFound"
	// ReasonTLSSecretInvalid: a TLS entry's Secret holds no usable
	// certificate and key; its hosts get the default certificate.
	ReasonTLSSecretInvalid = "TLSSecretInvalid"
)

// table is one immutable snapshot of what the proxy serves; requests read it
// without locks while the next one is built.
type table struct {
	hosts     map[string]*paths // rules of an exact host, lower case
	wildcards map[string]*paths // rules of "*.example.com" under "example.com"
	anyHost   *paths            // rules without a host
	fallback  *backend          // spec.defaultBackend of the oldest Ingress with one

	certs     map[string]*tls.Certificate // by exact host
	wildCerts map[string]*tls.Certificate // "*.example.com" under "example.com"
}

// paths are the merged path rules of one host.
type paths struct {
	exact  map[string]*route
	prefix map[string]*route // by path without its trailing "/", "/" for the root
}

// route is one path rule and the Ingress it comes from.
type route struct {
	backend *backend
	owner   string // namespace/name of the Ingress
}

// problem is something wrong with an Ingress, told as a Warning Event.
type problem struct {
	ing     *networkingv1.Ingress
	reason  string
	message string
}

// source is what a table is built from: the informers' stores in the
// proxy, plain objects in tests. The Ingresses come oldest first.
type source struct {
	ingresses []*networkingv1.Ingress
	class     ingressclass.Classes
	service   func(namespace, name string) *corev1.Service
	slices    func(namespace, service string) []*discoveryv1.EndpointSlice
	secret    func(namespace, name string) *corev1.Secret
}

type builder struct {
	src      source
	fw       *forwarder
	certs    *certCache
	t        *table
	backends map[string]*backend
	problems []problem
}

// build makes the table of the Ingresses src serves. Where Ingresses
// conflict, the older one's rule wins. What cannot be served is skipped and
// returned as problems.
func build(src source, fw *forwarder, certs *certCache) (*table, []problem) {
	b := &builder{
		src: src, fw: fw, certs: certs,
		t: &table{
			hosts: map[string]*paths{}, wildcards: map[string]*paths{},
			certs: map[string]*tls.Certificate{}, wildCerts: map[string]*tls.Certificate{},
		},
		backends: map[string]*backend{},
	}
	for _, ing := range src.ingresses {
		if ingressclass.Served(ing, src.class) {
			b.ingress(ing)
		}
	}
	certs.sweep()
	return b.t, b.problems
}

func (b *builder) report(ing *networkingv1.Ingress, reason, format string, args ...any) {
	b.problems = append(b.problems, problem{ing: ing, reason: reason, message: fmt.Sprintf(format, args...)})
}

func (b *builder) ingress(ing *networkingv1.Ingress) {
	if d := ing.Spec.DefaultBackend; d != nil {
		be := b.backend(ing, "spec.defaultBackend", d)
		if b.t.fallback == nil {
			b.t.fallback = be
		}
	}
	for i, rule := range ing.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		ps := b.hostPaths(ing, field, rule.Host)
		if ps == nil || rule.HTTP == nil {
			continue
		}
		for j, path := range rule.HTTP.Paths {
			b.path(ing, fmt.Sprintf("%s.http.paths[%d]", field, j), rule.Host, ps, path)
		}
	}
	b.tls(ing)
}

// hostPaths returns the path rules of a rule's host, nil when the host is
// not one the proxy can match.
func (b *builder) hostPaths(ing *networkingv1.Ingress, field, host string) *paths {
	h := strings.ToLower(host)
	var m map[string]*paths
	var key string
	switch {
	case h == "":
		if b.t.anyHost == nil {
			b.t.anyHost = newPaths()
		}
		return b.t.anyHost
	case strings.HasPrefix(h, "*."):
		if errs := validation.IsWildcardDNS1123Subdomain(h); len(errs) > 0 {
			b.report(ing, ReasonInvalidRule, "%s.host: %q is not a wildcard host (%s); the rule is skipped", field, host, strings.Join(errs, "; "))
			return nil
		}
		m, key = b.t.wildcards, h[2:]
	default:
		if errs := validation.IsDNS1123Subdomain(h); len(errs) > 0 {
			b.report(ing, ReasonInvalidRule, "%s.host: %q is not a DNS name (%s); the rule is skipped", field, host, strings.Join(errs, "; "))
			return nil
		}
		m, key = b.t.hosts, h
	}
	if m[key] == nil {
		m[key] = newPaths()
	}
	return m[key]
}

func newPaths() *paths {
	return &paths{exact: map[string]*route{}, prefix: map[string]*route{}}
}

func (b *builder) path(ing *networkingv1.Ingress, field, host string, ps *paths, p networkingv1.HTTPIngressPath) {
	typ := networkingv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		typ = *p.PathType
	}
	path := p.Path
	if path == "" {
		path = "/"
	}
	if path[0] != '/' {
		b.report(ing, ReasonInvalidRule, "%s.path: %q is not an absolute path (it must begin with \"/\"); the rule is skipped", field, p.Path)
		return
	}
	var m map[string]*route
	key := path
	switch typ {
	case networkingv1.PathTypeExact:
		m = ps.exact
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		m, key = ps.prefix, prefixKey(path)
	default:
		b.report(ing, ReasonInvalidRule, "%s.pathType: %q is not Exact, Prefix or ImplementationSpecific; the rule is skipped", field, typ)
		return
	}
	be := b.backend(ing, field+".backend", &p.Backend)
	owner := ing.Namespace + "/" + ing.Name
	if r := m[key]; r != nil {
		if host == "" {
			host = "(any host)"
		}
		b.report(ing, ReasonRuleConflict, "%s: host %s, %s path %q is already served by Ingress %s, which is older; this rule is skipped", field, host, typ, p.Path, r.owner)
		return
	}
	m[key] = &route{backend: be, owner: owner}
}

// prefixKey is a Prefix path without its trailing slashes: "/foo/" and
// "/foo" match the same requests.
func prefixKey(path string) string {
	k := strings.TrimRight(path, "/")
	if k == "" {
		return "/"
	}
	return k
}

// backend resolves an Ingress backend to its Service's port and ready
// endpoints. One that cannot be served answers 503.
func (b *builder) backend(ing *networkingv1.Ingress, field string, ib *networkingv1.IngressBackend) *backend {
	if ib.Resource != nil {
		b.report(ing, ReasonBackendNotSupported, "%s.resource: resource backends are not supported by keelson's ingress proxy; use a service backend", field)
		return b.failing("503 service unavailable: resource backends are not supported\n")
	}
	if ib.Service == nil {
		b.report(ing, ReasonBackendNotFound, "%s: names no service", field)
		return b.failing("503 service unavailable: the backend names no service\n")
	}
	ns, name := ing.Namespace, ib.Service.Name
	svc := b.src.service(ns, name)
	if svc == nil {
		b.report(ing, ReasonBackendNotFound, "%s.service.name: service %q not found in namespace %q; requests to it get 503 until it exists", field, name, ns)
		return b.failing("503 service unavailable: the backend service does not exist\n")
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		b.report(ing, ReasonBackendNotSupported, "%s.service.name: service %s/%s is of type ExternalName, which keelson's ingress proxy does not serve", field, ns, name)
		return b.failing("503 service unavailable: ExternalName services are not supported\n")
	}
	sp, err := servicePort(svc, ib.Service.Port)
	if err != nil {
		b.report(ing, ReasonBackendNotFound, "%s.service.port: %v; requests to it get 503 until it does", field, err)
		return b.failing("503 service unavailable: the backend service has no such port\n")
	}
	key := fmt.Sprintf("%s/%s:%d", ns, name, sp.Port)
	if be := b.backends[key]; be != nil {
		return be
	}
	eps := endpoints(b.src.slices(ns, name), sp.Name)
	be := b.fw.newBackend(key, eps, sp.AppProtocol != nil && *sp.AppProtocol == appProtocolH2C)
	b.backends[key] = be
	return be
}

// failing returns a backend that answers 503 with body; one per body.
func (b *builder) failing(body string) *backend {
	key := "!" + body
	if be := b.backends[key]; be != nil {
		return be
	}
	be := &backend{name: key, status: http.StatusServiceUnavailable, body: body}
	b.backends[key] = be
	return be
}

// tls adds the certificates of an Ingress's TLS entries. An entry without
// hosts covers the hosts of the Ingress's rules.
func (b *builder) tls(ing *networkingv1.Ingress) {
	for i, entry := range ing.Spec.TLS {
		hosts := entry.Hosts
		if len(hosts) == 0 {
			for _, r := range ing.Spec.Rules {
				if r.Host != "" {
					hosts = append(hosts, r.Host)
				}
			}
		}
		if entry.SecretName == "" || len(hosts) == 0 {
			continue // the default certificate
		}
		cert, err := b.certs.load(ing.Namespace, entry.SecretName, b.src.secret(ing.Namespace, entry.SecretName))
		if err != nil {
			reason := ReasonTLSSecretInvalid
			if errors.Is(err, errSecretNotFound) {
				reason = ReasonTLSSecretNotFound
			}
			b.report(ing, reason, "spec.tls[%d].secretName: %v; hosts %s get keelson's self-signed default certificate until it does", i, err, strings.Join(hosts, ", "))
			continue
		}
		for _, h := range hosts {
			h = strings.ToLower(h)
			m, key := b.t.certs, h
			if wild, ok := strings.CutPrefix(h, "*."); ok {
				m, key = b.t.wildCerts, wild
			}
			if m[key] == nil {
				m[key] = cert
			}
		}
	}
}
