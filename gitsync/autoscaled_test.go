package gitsync

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
)

func deploymentWith(replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "localhost/web:1"}]
`, replicas)
}

const webHPA = `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`

// With an autoscaler of the revision targeting it, a Deployment's
// spec.replicas is the autoscaler's: Git's value sets the first count
// only, a later change of it in Git is neither written nor drift, and the
// Sync's status says whose replicas follow whom. When the autoscaler leaves
// Git, Git's count applies again. keelson plan shows the same.
func TestAutoscaledReplicas(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	s := newSyncer(t, "apps")
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s}
	get := func() int32 {
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "default", "web", &d); err != nil {
			t.Fatal(err)
		}
		return ptr.Deref(d.Spec.Replicas, 1)
	}
	scaleTo := func(n int32) { // as the autoscaler does
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "default", "web", &d); err != nil {
			t.Fatal(err)
		}
		d.Spec.Replicas = &n
		if err := s.Store.Update(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}

	first := r.commit(map[string]string{"web.yaml": deploymentWith(2), "hpa.yaml": webHPA})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := get(); n != 2 {
		t.Fatalf("first count %d, want Git's 2", n)
	}
	st := l.Status()
	if want := []string{"Deployment default/web (HorizontalPodAutoscaler web)"}; !slices.Equal(st.Autoscaled, want) ||
		!strings.Contains(st.Message, "replicas follow their autoscaler, not Git, for Deployment default/web (HorizontalPodAutoscaler web)") {
		t.Errorf("status autoscaled %v, message %q", st.Autoscaled, st.Message)
	}

	scaleTo(7)
	second := r.commit(map[string]string{"web.yaml": deploymentWith(3)})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := get(); n != 7 {
		t.Errorf("after Git changed replicas to 3: %d, want the autoscaler's 7", n)
	}
	res, err := syncNow(t, s, NewLocalGit(r.dir, "main"))
	if err != nil || res.DriftCorrected != 0 || res.Updated != 0 || get() != 7 {
		t.Errorf("a resync: %+v %v, replicas %d; want nothing changed", res, err, get())
	}

	p, err := PlanGit(ctx, r.dir, first, second, PlanOptions{Schema: testSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Autoscaled, []string{"Deployment default/web (HorizontalPodAutoscaler web)"}) || p.Changed != 0 {
		t.Errorf("plan of a replicas change under an autoscaler: autoscaled %v, %d changed %+v", p.Autoscaled, p.Changed, p.Objects)
	}
	var out strings.Builder
	p.WriteText(&out, false)
	if !strings.Contains(out.String(), "Autoscaled: replicas follow their autoscaler, not Git") {
		t.Errorf("the plan does not say so:\n%s", out.String())
	}

	r.commit(map[string]string{"hpa.yaml": ""})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := get(); n != 3 {
		t.Errorf("after the autoscaler left Git: %d, want Git's 3", n)
	}
	if st := l.Status(); len(st.Autoscaled) != 0 {
		t.Errorf("status still names %v", st.Autoscaled)
	}
}
