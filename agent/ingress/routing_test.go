package ingress

import (
	"context"
	"net/http"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/ingressclass"
)

// objects gathers test objects.
func objects(groups ...[]runtime.Object) []runtime.Object {
	var out []runtime.Object
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// TestHostRouting: rules of two hosts, merged from two Ingresses, send each
// host to its service, whatever the case of the Host header and its port; a
// host without rules gets 404 with a short plain-text body.
func TestHostRouting(t *testing.T) {
	foo, bar, other := newUpstream(t, "foo"), newUpstream(t, "bar"), newUpstream(t, "other")
	e := newEnv(t, objects(serviceFor(foo), serviceFor(bar), serviceFor(other), []runtime.Object{
		ingress("a", 0, rule("foo.example.com", prefix("/", "foo")), rule("bar.example.com", prefix("/", "bar"))),
		ingress("b", 1, rule("foo.example.com", prefix("/other", "other"))),
	})...)
	c := e.client(e.proxy())

	for _, tc := range []struct{ host, path, want string }{
		{"foo.example.com", "/", "foo"},
		{"FOO.Example.COM:8080", "/x", "foo"},
		{"foo.example.com.", "/x", "foo"},
		{"bar.example.com", "/x", "bar"},
		{"foo.example.com", "/other/x", "other"},
		{"bar.example.com", "/other/x", "bar"},
		{"baz.example.com", "/", "404"},
	} {
		if got := c.get(tc.host, tc.path).served(); got != tc.want {
			t.Errorf("%s%s: served by %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	r := c.get("baz.example.com", "/")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(r.body, "404") || len(r.body) > 200 {
		t.Errorf("404 answer: Content-Type %q, body %q; want a short plain-text body", ct, r.body)
	}
}

// TestWildcardAndAnyHost: "*.example.com" covers exactly one more label; an
// exact host is preferred to the wildcard; a rule without host serves every
// host, after the rules of the host (also for paths the host's rules do not
// match).
func TestWildcardAndAnyHost(t *testing.T) {
	exact, wild, anyHost := newUpstream(t, "exact"), newUpstream(t, "wild"), newUpstream(t, "any")
	e := newEnv(t, objects(serviceFor(exact), serviceFor(wild), serviceFor(anyHost), []runtime.Object{
		ingress("a", 0, rule("", prefix("/", "any"))),
		ingress("b", 1, rule("*.example.com", prefix("/", "wild")), rule("www.example.com", prefix("/app", "exact")),
			rule("api.test", prefix("/v1", "exact"))),
	})...)
	c := e.client(e.proxy())

	for _, tc := range []struct{ host, path, want string }{
		{"a.example.com", "/", "wild"},
		{"A.EXAMPLE.com", "/x", "wild"},
		{"example.com", "/", "any"},
		{"a.b.example.com", "/", "any"},
		{"www.example.com", "/app/1", "exact"},
		{"www.example.com", "/other", "wild"},
		{"api.test", "/v1", "exact"},
		{"api.test", "/v2", "any"},
		{"nothing.test", "/", "any"},
		{"", "/", "any"},
	} {
		if got := c.get(tc.host, tc.path).served(); got != tc.want {
			t.Errorf("%q%s: served by %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
}

// TestPathTypes: Exact, Prefix and ImplementationSpecific through the
// proxy; the longest match wins, Exact before Prefix of the same path.
func TestPathTypes(t *testing.T) {
	names := []string{"exact", "prefix", "deeper", "impl", "root"}
	var objs []runtime.Object
	for _, n := range names {
		objs = append(objs, serviceFor(newUpstream(t, n))...)
	}
	h := "paths.example.com"
	objs = append(objs, ingress("paths", 0, rule(h,
		path(networkingv1.PathTypeExact, "/foo", "exact"),
		prefix("/foo", "prefix"),
		prefix("/foo/bar/", "deeper"),
		path(networkingv1.PathTypeImplementationSpecific, "/impl", "impl"),
		prefix("/", "root"),
	)))
	e := newEnv(t, objs...)
	c := e.client(e.proxy())

	for _, tc := range []struct{ path, want string }{
		{"/foo", "exact"},
		{"/foo/", "prefix"},
		{"/foo/x", "prefix"},
		{"/foobar", "root"},
		{"/foo/bar", "deeper"},
		{"/foo/bar/baz", "deeper"},
		{"/foo/barbaz", "prefix"},
		{"/impl", "impl"},
		{"/impl/x", "impl"},
		{"/implx", "root"},
		{"/", "root"},
	} {
		r := c.get(h, tc.path+"?q=1")
		if got := r.served(); got != tc.want {
			t.Errorf("%s: served by %s, want %s", tc.path, got, tc.want)
		}
		if r.status == http.StatusOK && r.header.Get("X-Seen-Path") != tc.path {
			t.Errorf("%s: the backend was asked for %q, want the path unchanged", tc.path, r.header.Get("X-Seen-Path"))
		}
	}
}

// TestDefaultBackend: with no rule matching, the oldest Ingress's
// spec.defaultBackend serves, also from an Ingress without rules; removing
// it leaves 404.
func TestDefaultBackend(t *testing.T) {
	site, def, younger := newUpstream(t, "site"), newUpstream(t, "default"), newUpstream(t, "younger")
	withDefault := func(name string, minute int, svc string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
		ing := ingress(name, minute, rules...)
		ing.Spec.DefaultBackend = ptr.To(svcBackend(svc))
		return ing
	}
	e := newEnv(t, objects(serviceFor(site), serviceFor(def), serviceFor(younger), []runtime.Object{
		ingress("site", 0, rule("site.example.com", prefix("/app", "site"))),
		// Named to sort first, created later: age decides, not the name.
		withDefault("a-younger", 5, "younger"),
		withDefault("z-default", 1, "default"),
	})...)
	c := e.client(e.proxy())

	for _, tc := range []struct{ host, path, want string }{
		{"site.example.com", "/app", "site"},
		{"site.example.com", "/elsewhere", "default"},
		{"unknown.example.com", "/", "default"},
	} {
		if got := c.get(tc.host, tc.path).served(); got != tc.want {
			t.Errorf("%s%s: served by %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	for _, name := range []string{"z-default", "a-younger"} {
		if err := e.cs.NetworkingV1().Ingresses(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if name == "z-default" {
			c.waitFor("unknown.example.com", "/", "younger")
		}
	}
	c.waitFor("unknown.example.com", "/", "404")
}

// TestOldestIngressWinsAConflict: two Ingresses with the same host, path
// and type: the older serves it, whatever the names, and the younger one is
// told with a Warning.
func TestOldestIngressWinsAConflict(t *testing.T) {
	old, young := newUpstream(t, "old"), newUpstream(t, "young")
	e := newEnv(t, objects(serviceFor(old), serviceFor(young), []runtime.Object{
		ingress("z-old", 0, rule("c.example.com", prefix("/", "old"))),
		ingress("a-young", 3, rule("c.example.com", prefix("/", "young"))),
	})...)
	c := e.client(e.proxy())
	if got := c.get("c.example.com", "/").served(); got != "old" {
		t.Errorf("served by %s, want old", got)
	}
	if evs := e.eventsOf(ns+"/a-young", ReasonRuleConflict); len(evs) != 1 || !strings.Contains(evs[0].message, "z-old") {
		t.Errorf("events on the younger Ingress: %v, want one %s naming z-old", evs, ReasonRuleConflict)
	}
}

// TestIngressClasses: an Ingress of another controller's class is not
// served; one of an IngressClass whose controller is keelson's is.
func TestIngressClasses(t *testing.T) {
	mine, theirs := newUpstream(t, "mine"), newUpstream(t, "theirs")
	other := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/other"}}
	custom := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "custom"}, Spec: networkingv1.IngressClassSpec{Controller: ingressclass.Controller}}
	ingTheirs := ingress("theirs", 0, rule("theirs.example.com", prefix("/", "theirs")))
	ingTheirs.Spec.IngressClassName = ptr.To("other")
	ingMine := ingress("mine", 0, rule("mine.example.com", prefix("/", "mine")))
	ingMine.Spec.IngressClassName = ptr.To("custom")
	e := newEnv(t, objects(serviceFor(mine), serviceFor(theirs), []runtime.Object{other, custom, ingTheirs, ingMine})...)
	c := e.client(e.proxy())
	if got := c.get("theirs.example.com", "/").served(); got != "404" {
		t.Errorf("another controller's Ingress: served by %s, want 404", got)
	}
	if got := c.get("mine.example.com", "/").served(); got != "mine" {
		t.Errorf("Ingress of a class of keelson's controller: served by %s, want mine", got)
	}
}
