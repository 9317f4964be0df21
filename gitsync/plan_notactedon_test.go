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
