package gitsync

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestRememberedObjectsStayCorrect checks the objects Apply does not compare
// again: a status written by a controller moves the resourceVersion but is
// not drift, and the object is not rewritten; a spec changed in the store is
// found even though its file did not change.
func TestRememberedObjectsStayCorrect(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	s := newSyncer(t, "mem")
	src := NewLocalGit(r.dir, "main")
	r.commit(map[string]string{"web.yaml": deployment("default", "web", 2), "cm.yaml": configMap("cm", "v"), "keep.yaml": configMap("keep", "k")})
	wantCounts(t, mustApply(t, s, src), 3, 0, 0, 0)
	wantCounts(t, mustApply(t, s, src), 0, 0, 0, 3) // written objects are compared once more; from here on keep is not

	var d appsv1.Deployment
	if err := s.Store.Get(ctx, "default", "web", &d); err != nil {
		t.Fatal(err)
	}
	d.Status.Replicas = 2
	if err := s.Store.UpdateStatus(ctx, &d); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"cm.yaml": configMap("cm", "w")})
	res := mustApply(t, s, src)
	wantCounts(t, res, 0, 1, 0, 2)
	if res.DriftCorrected != 0 {
		t.Errorf("a status write counted as drift: %+v", res.Changes)
	}
	var after appsv1.Deployment
	if err := s.Store.Get(ctx, "default", "web", &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != d.ResourceVersion {
		t.Errorf("the Deployment was rewritten after a status write: resourceVersion %s -> %s", d.ResourceVersion, after.ResourceVersion)
	}

	*after.Spec.Replicas = 5
	if err := s.Store.Update(ctx, &after); err != nil {
		t.Fatal(err)
	}
	res = mustApply(t, s, src)
	wantCounts(t, res, 0, 1, 0, 2)
	if res.DriftCorrected != 1 || !res.Changes[0].Drift {
		t.Errorf("drift corrected %d, changes %+v; want the Deployment put back as drift", res.DriftCorrected, res.Changes)
	}
	if err := s.Store.Get(ctx, "default", "web", &after); err != nil {
		t.Fatal(err)
	}
	if *after.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2 from Git", *after.Spec.Replicas)
	}
}
