package gitsync

import (
	"strings"
	"testing"
)

func TestPlanOrder(t *testing.T) {
	base := map[string]string{"deploy/web.yaml": webDeployment("1", "yes")}
	head := map[string]string{
		"deploy/ns.yaml":      waveNamespace,
		"deploy/migrate.yaml": hookJob("migrate", 0, ""),
		"deploy/web.yaml":     webDeployment("2", "yes"),
		"deploy/smoke.yaml":   smokePod,
	}
	p := planRepo(t, base, head)
	want := []string{
		"wave -1: Namespace shop",
		"pre-apply hook (wave 0): Job shop/migrate",
		"wave 0: Deployment shop/web",
		"post-apply hook: Pod shop/smoke",
	}
	var got []string
	for _, s := range p.Order {
		got = append(got, s.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Hooks are run, not applied: never planned as objects.
	for _, o := range p.Objects {
		if o.Name == "migrate" || o.Name == "smoke" {
			t.Errorf("hook %s planned as an object to %s", o.Title(), o.Action)
		}
	}
	if p.Created != 1 || p.Changed != 1 {
		t.Errorf("created %d, changed %d; want the namespace and the deployment", p.Created, p.Changed)
	}
	out := renderAll(t, p)
	if !strings.Contains(out["text"], "Order:\n  1. wave -1: Namespace shop\n  2. pre-apply hook (wave 0): Job shop/migrate") {
		t.Errorf("text output lacks the order:\n%s", out["text"])
	}
	if !strings.Contains(out["markdown"], "### Order\n\n1. wave -1: Namespace shop\n") {
		t.Errorf("markdown output lacks the order:\n%s", out["markdown"])
	}
	// A head without waves or hooks has no order to show; a head with an
	// invalid hook is refused at its line.
	if p := planRepo(t, base, map[string]string{"deploy/web.yaml": webDeployment("3", "yes")}); p.Order != nil {
		t.Errorf("order of a plain revision: %v", p.Order)
	}
	bad := planRepo(t, base, map[string]string{"deploy/web.yaml": webDeployment("1", "yes"), "deploy/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  annotations: {keelson.dev/hook: pre-apply, keelson.dev/wave: soon}
`})
	var msgs []string
	for _, e := range bad.Errors {
		msgs = append(msgs, e.Error())
	}
	joined := strings.Join(msgs, "\n")
	for _, w := range []string{`deploy/cm.yaml:1: ConfigMap default/x: annotation keelson.dev/wave: "soon" is not an integer`, "a hook is a Job or a Pod, not a ConfigMap"} {
		if !strings.Contains(joined, w) {
			t.Errorf("errors lack %q:\n%s", w, joined)
		}
	}
}
