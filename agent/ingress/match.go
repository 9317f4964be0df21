package ingress

import (
	"crypto/tls"
	"strings"
)

// route finds the backend of a request: the rules of its exact host, then
// of the wildcard that covers it, then those without a host; within each,
// the longest matching path, Exact before Prefix. Without a match it is the
// default backend, nil when there is none. host is lower case, without port.
func (t *table) route(host, path string) *backend {
	if ps := t.hosts[host]; ps != nil {
		if r := ps.match(path); r != nil {
			return r.backend
		}
	}
	if ps := t.wildcards[parentDomain(host)]; ps != nil {
		if r := ps.match(path); r != nil {
			return r.backend
		}
	}
	if t.anyHost != nil {
		if r := t.anyHost.match(path); r != nil {
			return r.backend
		}
	}
	return t.fallback
}

// match finds the rule of the longest path that matches: an Exact one
// matches the whole path, so it is tried first; then Prefix paths, from the
// whole path down to "/", cut only where an element ends ("/foo" matches
// "/foo", "/foo/" and "/foo/bar", not "/foobar").
func (ps *paths) match(path string) *route {
	if r := ps.exact[path]; r != nil {
		return r
	}
	if len(ps.prefix) == 0 {
		return nil
	}
	for i := len(path); i > 0; i = strings.LastIndexByte(path[:i], '/') {
		if r := ps.prefix[path[:i]]; r != nil {
			return r
		}
	}
	return ps.prefix["/"]
}

// parentDomain is host without its first label: the key of the wildcard
// rules that cover it ("*.example.com" covers "a.example.com", not
// "example.com" nor "a.b.example.com"). "" when host has one label.
func parentDomain(host string) string {
	i := strings.IndexByte(host, '.')
	if i <= 0 {
		return ""
	}
	return host[i+1:]
}

// hostOnly is a Host header as rules name hosts: without the port or a
// trailing dot, in lower case.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// certificate is the certificate of a TLS server name: its exact host's,
// else its wildcard's, nil when neither has one.
func (t *table) certificate(name string) *tls.Certificate {
	if c := t.certs[name]; c != nil {
		return c
	}
	return t.wildCerts[parentDomain(name)]
}
