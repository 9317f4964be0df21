package gitsync

import (
	"testing"

	"github.com/keelson/keelson/store"
)

// A plan against the cluster reads its custom resources, and checks head's
// against the cluster's CRDs when the CRD is another sync's.
func TestPlanClusterCustomResources(t *testing.T) {
	t.Cleanup(func() { store.UnregisterCustom("widgets.example.com") })
	ctx := t.Context()
	r := newRepo(t)
	r.commit(map[string]string{"platform/crd.yaml": crdWidgets, "apps/a.yaml": widgetDoc("a", "1")})
	platform := newSyncer(t, "platform")
	platform.Path = "platform"
	apps := newSyncer(t, "apps")
	apps.Store, apps.Path = platform.Store, "apps"
	for _, s := range []*Syncer{platform, apps} {
		if _, err := syncNow(t, s, NewLocalGit(r.dir, "main")); err != nil {
			t.Fatalf("sync %s: %v", s.Name, err)
		}
	}
	h := r.commit(map[string]string{"apps/a.yaml": widgetDoc("a", "2"), "apps/b.yaml": widgetDoc("b", "3")})
	r.setBranch("pr", h)
	p, err := PlanCluster(ctx, r.dir, "pr", storeCluster{platform.Store}, PlanOptions{Schema: testSchema(t), Name: "apps", Path: "apps"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(p.Errors) > 0 {
		t.Fatalf("plan errors: %v", p.Errors)
	}
	if a := findObject(t, p, "Widget default/a"); a.Action != Update {
		t.Errorf("widget a: %s, want update (it is in the cluster)", a.Action)
	}
	if b := findObject(t, p, "Widget default/b"); b.Action != Create {
		t.Errorf("widget b: %s, want create", b.Action)
	}
}
