package gitsync

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/internal/support"
)

const ingressYAML = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  defaultBackend:
    service: {name: web, port: {number: 80}}
`

// TestPlanKindsNotActedOn: each object of a kind keelson stores but does
// not act on that the plan creates or changes gets a kind-not-acted-on
// warning with the list's sentence, in every output format; one left
// unchanged or deleted gets none, nor does a kind keelson acts on, and the
// warnings leave the plan valid.
func TestPlanKindsNotActedOn(t *testing.T) {
	base := map[string]string{
		"deploy/ns.yaml":       namespace("shop"),
		"deploy/template.yaml": podTemplate("shop", "web"),
		"deploy/web.yaml":      ingressYAML + "---\n" + deployment("shop", "web", 1),
		"deploy/old.yaml":      networkPolicy("shop", "old"),
		"deploy/left.yaml":     podTemplate("shop", "cache"),
	}
	head := map[string]string{
		"deploy/template.yaml": strings.Replace(podTemplate("shop", "web"), "web:1", "web:2", 1),
		"deploy/web.yaml":      ingressYAML + "---\n" + deployment("shop", "web", 2),
		"deploy/old.yaml":      "",
		"deploy/policy.yaml":   networkPolicy("shop", "deny"),
	}
	p := planRepo(t, base, head)
	if len(p.Errors) > 0 {
		t.Fatalf("errors: %v", p.Errors)
	}
	say := func(group, kind string) string {
		m, ok := support.NotActedOn(schema.GroupKind{Group: group, Kind: kind})
		if !ok {
			t.Fatalf("%s is not on support's list", kind)
		}
		return m
	}
	want := map[string]string{
		"PodTemplate shop/web":    say("", "PodTemplate"),
		"NetworkPolicy shop/deny": say("networking.k8s.io", "NetworkPolicy"),
	}
	got := map[string]string{}
	for _, r := range p.Risks {
		if r.Code == "kind-not-acted-on" {
			if r.Level != RiskWarning {
				t.Errorf("%s: level %s, want warning", r.Object, r.Level)
			}
			got[r.Object] = r.Message
		}
	}
	if len(got) != len(want) || got["PodTemplate shop/web"] != want["PodTemplate shop/web"] || got["NetworkPolicy shop/deny"] != want["NetworkPolicy shop/deny"] {
		t.Errorf("kind-not-acted-on risks %q, want %q (not the unchanged Ingress or PodTemplate shop/cache, the deleted NetworkPolicy, the Deployment)", got, want)
	}
	if p.Invalid() {
		t.Errorf("warnings made the plan invalid: %+v", p.Risks)
	}
	out := renderAll(t, p)
	for object, msg := range want {
		if line := "WARNING " + object + ": " + msg; !strings.Contains(out["text"], line) {
			t.Errorf("text lacks %q:\n%s", line, out["text"])
		}
		if line := "- :warning: **warning** `" + object + "`: " + msg; !strings.Contains(out["markdown"], line) {
			t.Errorf("markdown lacks %q:\n%s", line, out["markdown"])
		}
	}
	var decoded struct{ Risks []Risk }
	if err := json.Unmarshal([]byte(out["json"]), &decoded); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range decoded.Risks {
		if r.Code == "kind-not-acted-on" && r.Level == RiskWarning && want[r.Object] == r.Message {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("JSON has %d of the %d kind-not-acted-on risks:\n%s", n, len(want), out["json"])
	}
}

// TestPlanNotServed: an object of a kind keelson acts on whose spec asks
// for what nothing in keelson serves — an Ingress of another controller's
// class, an IngressClass of another controller, a LoadBalancer service of a
// loadBalancerClass — gets a not-served warning with its health rule's
// sentence; an Ingress of keelson's class and a plain LoadBalancer service
// get none.
func TestPlanNotServed(t *testing.T) {
	head := map[string]string{
		"deploy/ns.yaml":  namespace("shop"),
		"deploy/web.yaml": ingressYAML,
		"deploy/nginx.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other, namespace: shop}
spec:
  ingressClassName: nginx
  defaultBackend:
    service: {name: web, port: {number: 80}}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
`,
		// A class of keelson's controller under a name of its own: its
		// Ingresses are served, nothing to warn of.
		"deploy/internal.yaml": `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: internal}
spec: {controller: keelson.dev/ingress}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: inside, namespace: shop}
spec:
  ingressClassName: internal
  defaultBackend:
    service: {name: web, port: {number: 80}}
`,
		"deploy/lb.yaml": `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: metal, namespace: shop}
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/metal
  selector: {app: web}
  ports: [{port: 80}]
`,
	}
	p := planRepo(t, map[string]string{"deploy/ns.yaml": namespace("shop")}, head)
	if len(p.Errors) > 0 {
		t.Fatalf("errors: %v", p.Errors)
	}
	got := map[string]string{}
	for _, r := range p.Risks {
		if r.Code == "not-served" {
			got[r.Object] = r.Message
		}
	}
	want := map[string]string{
		"Ingress shop/other": `no controller serves class "nginx"`,
		"IngressClass nginx": `Ingresses of class "nginx" route no traffic`,
		"Service shop/metal": "keelson has no load balancer of class example.com/metal",
	}
	if len(got) != len(want) {
		t.Errorf("not-served risks %q, want those of %q", got, want)
	}
	for object, part := range want {
		if !strings.Contains(got[object], part) {
			t.Errorf("%s: not-served %q, want it to say %q", object, got[object], part)
		}
	}
}
