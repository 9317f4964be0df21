package ingress

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keelson/keelson/internal/ingressclass"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// sourceOf is a build source of plain objects. Every service it is asked
// for exists, with port 80 "http" and one ready endpoint, unless objs hold
// Services: then only those do.
func sourceOf(objs ...runtime.Object) source {
	var ings []*networkingv1.Ingress
	svcs := map[string]*corev1.Service{}
	secrets := map[string]*corev1.Secret{}
	classes := map[string]*networkingv1.IngressClass{}
	for _, o := range objs {
		switch o := o.(type) {
		case *networkingv1.Ingress:
			ings = append(ings, o)
		case *corev1.Service:
			svcs[o.Namespace+"/"+o.Name] = o
		case *corev1.Secret:
			secrets[o.Namespace+"/"+o.Name] = o
		case *networkingv1.IngressClass:
			classes[o.Name] = o
		}
	}
	sortIngresses(ings)
	return source{
		ingresses: ings,
		class:     ingressclass.Map(classes),
		service: func(namespace, name string) *corev1.Service {
			if len(svcs) == 0 {
				s := service(name)
				s.Namespace = namespace
				return s
			}
			return svcs[namespace+"/"+name]
		},
		slices: func(namespace, svc string) []*discoveryv1.EndpointSlice {
			return []*discoveryv1.EndpointSlice{slice(svc+"-1", svc, 8080, true, "10.0.0.1")}
		},
		secret: func(namespace, name string) *corev1.Secret { return secrets[namespace+"/"+name] },
	}
}

// routeName is the service a request goes to, "" for none.
func routeName(t *table, host, path string) string {
	b := t.route(hostOnly(host), path)
	if b == nil {
		return ""
	}
	name := strings.TrimPrefix(b.name, ns+"/")
	return strings.TrimSuffix(name, ":80")
}

// TestMatch: the matching rules, request by request, with the problems a
// build reports for what it skips.
func TestMatch(t *testing.T) {
	impl := networkingv1.PathTypeImplementationSpecific
	src := sourceOf(
		ingress("a", 0,
			rule("www.example.com",
				path(networkingv1.PathTypeExact, "/exact", "exact"),
				prefix("/docs/", "docs"),
				prefix("/docs/v2", "docs2"),
				path(impl, "", "implroot"),
			),
			rule("*.example.com", prefix("/", "wild")),
			rule("Bad_Host!", prefix("/", "never")),
			rule("", prefix("/api", "api")),
			rule("rel.example.com", prefix("relative", "never")),
		),
		ingress("b", 1,
			rule("www.example.com", prefix("/exact", "exactprefix"), prefix("/docs", "younger")),
			rule("", path(networkingv1.PathType("Regex"), "/re", "never")),
		),
	)
	tb, problems := build(src, newForwarder(discard()), newCertCache())
	for _, tc := range []struct{ host, path, want string }{
		{"www.example.com", "/exact", "exact"},
		{"www.example.com", "/exact/", "exactprefix"},
		{"www.example.com", "/exactly", "implroot"},
		{"www.example.com", "/docs", "docs"},
		{"www.example.com", "/docs/", "docs"},
		{"www.example.com", "/docs/v2", "docs2"},
		{"www.example.com", "/docs/v2/", "docs2"},
		{"www.example.com", "/docs/v2x", "docs"},
		{"www.example.com", "/docs//v2", "docs"},
		{"www.example.com", "/", "implroot"},
		{"www.example.com", "", "implroot"},
		{"www.example.com:443", "/x", "implroot"},
		{"api.example.com", "/api/x", "wild"},
		{"example.com", "/api/x", "api"},
		{"example.com", "/apix", ""},
		{"rel.example.com", "/relative", "wild"},
		{"[::1]:80", "/api", "api"},
	} {
		if got := routeName(tb, tc.host, tc.path); got != tc.want {
			t.Errorf("%q %q: routed to %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
	var reasons []string
	for _, p := range problems {
		reasons = append(reasons, p.ing.Name+":"+p.reason)
	}
	want := "a:InvalidRule a:InvalidRule b:RuleConflict b:InvalidRule"
	if got := strings.Join(reasons, " "); got != want {
		t.Errorf("problems: %s, want %s", got, want)
	}
}

// FuzzMatch: matching never panics, and agrees with the Ingress spec's
// definition, written here the plain way: a Prefix path matches when its
// elements (split on "/") begin the request's; Exact before Prefix.
func FuzzMatch(f *testing.F) {
	for _, seed := range [][4]string{
		{"foo.example.com", "/foo", "FOO.example.com:80", "/foo/bar"},
		{"foo.example.com", "/foo", "foo.example.com", "/foobar"},
		{"*.example.com", "/", "a.example.com", "/"},
		{"*.example.com", "/a/", "a.b.example.com", "/a"},
		{"", "", "", ""},
		{"", "/", "[::1]:8080", "*"},
		{"x", "//a//", "x.", "//a//b"},
		{"*", "a", ":", "/%2F"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	fw := newForwarder(discard())
	f.Fuzz(func(t *testing.T, ruleHost, rulePath, host, reqPath string) {
		ing := ingress("fuzz", 0, rule(ruleHost,
			path(networkingv1.PathTypeExact, rulePath, "exact"),
			path(networkingv1.PathTypePrefix, rulePath, "prefix")))
		ing.Spec.TLS = []networkingv1.IngressTLS{{SecretName: "s"}}
		tb, _ := build(sourceOf(ing), fw, newCertCache())
		_ = tb.certificate(hostOnly(host))
		got := routeName(tb, host, reqPath)
		if want := refRoute(ruleHost, rulePath, hostOnly(host), reqPath); got != want {
			t.Errorf("rule %q %q, request %q %q: routed to %q, want %q", ruleHost, rulePath, host, reqPath, got, want)
		}
	})
}

// refRoute is where a request goes under one rule with an Exact and a
// Prefix path, by the spec's definitions.
func refRoute(ruleHost, rulePath, host, reqPath string) string {
	rh := strings.ToLower(ruleHost)
	switch {
	case rh == "":
	case strings.HasPrefix(rh, "*."):
		label, rest, ok := strings.Cut(host, ".")
		if len(validation.IsWildcardDNS1123Subdomain(rh)) > 0 || !ok || label == "" || rest != rh[2:] {
			return ""
		}
	default:
		if len(validation.IsDNS1123Subdomain(rh)) > 0 || host != rh {
			return ""
		}
	}
	if rulePath == "" {
		rulePath = "/"
	}
	if rulePath[0] != '/' {
		return ""
	}
	if reqPath == rulePath {
		return "exact"
	}
	trimmed := strings.TrimRight(rulePath, "/")
	if trimmed == "" {
		return "prefix"
	}
	want, have := strings.Split(trimmed, "/"), strings.Split(reqPath, "/")
	if len(have) < len(want) {
		return ""
	}
	for i := range want {
		if want[i] != have[i] {
			return ""
		}
	}
	return "prefix"
}

// TestHostOnly: Host headers as rules name hosts.
func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM":      "example.com",
		"example.com:8080": "example.com",
		"example.com.":     "example.com",
		"[::1]:80":         "[::1]",
		"[::1]":            "[::1]",
		"":                 "",
	} {
		if got := hostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}
