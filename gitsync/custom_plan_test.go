package gitsync

import (
	"testing"

	"github.com/keelson/keelson/store"
)

func TestPlanCustomResources(t *testing.T) {
	t.Cleanup(func() { store.UnregisterCustom("widgets.example.com") })
	p := planRepo(t, map[string]string{
		"deploy/crd.yaml": crdWidgets,
		"deploy/a.yaml":   widgetDoc("a", "1"),
		"deploy/c.yaml":   widgetDoc("c", "1"),
	}, map[string]string{
		"deploy/a.yaml": widgetDoc("a", "2"),
		"deploy/b.yaml": widgetDoc("b", "1"),
		"deploy/c.yaml": "",
	})
	if len(p.Errors) > 0 {
		t.Fatalf("errors: %v", p.Errors)
	}
	if p.Created != 1 || p.Changed != 1 || p.Deleted != 1 || p.Unchanged != 1 {
		t.Fatalf("created/changed/deleted/unchanged %d/%d/%d/%d: %+v", p.Created, p.Changed, p.Deleted, p.Unchanged, p.Objects)
	}
	if a := findObject(t, p, "Widget default/a"); a.Action != Update {
		t.Errorf("Widget a: %+v", a)
	}
	if b := findObject(t, p, "Widget default/b"); b.Action != Create || b.Origin != "deploy/b.yaml:1" {
		t.Errorf("Widget b: %+v", b)
	}
	if !hasRisk(p, RiskWarning, "kind-not-acted-on", "Widget default/b") {
		t.Errorf("no kind-not-acted-on risk for the new Widget: %+v", p.Risks)
	}
}
