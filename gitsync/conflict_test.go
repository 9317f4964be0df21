package gitsync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

func TestOwnershipConflict(t *testing.T) {
	ctx := t.Context()
	a := newSyncer(t, "team-a")
	b := &Syncer{Name: "team-b", Store: a.Store, Schema: a.Schema, Prune: true}
	ra, rb := newRepo(t), newRepo(t)
	ra.commit(map[string]string{"cm.yaml": configMap("shared", "from-a")})
	rb.commit(map[string]string{"mine.yaml": configMap("b-only", "b"), "x/shared.yaml": configMap("shared", "from-b")})

	mustApply(t, a, NewLocalGit(ra.dir, "main"))
	res, err := syncNow(t, b, NewLocalGit(rb.dir, "main"))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if len(res.Errors) != 1 {
		t.Fatalf("errors = %v, want one", res.Errors)
	}
	msg := res.Errors[0].Error()
	for _, want := range []string{"x/shared.yaml:1", `"team-a"`, `"team-b"`, "cm.yaml:1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("conflict %q does not name %s", msg, want)
		}
	}
	var cm corev1.ConfigMap
	if err := a.Store.Get(ctx, "default", "shared", &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["key"] != "from-a" || cm.Labels[LabelSource] != "team-a" {
		t.Errorf("shared was overwritten: %v %v", cm.Data, cm.Labels)
	}
	if err := a.Store.Get(ctx, "default", "b-only", &cm); err == nil {
		t.Error("b-only was created although team-b's revision has a conflict")
	}
}

func TestControllerObjectsAreNotTaken(t *testing.T) {
	s := newSyncer(t, "apps")
	made := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "made", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u1"}}}}
	if err := s.Store.Create(t.Context(), made); err != nil {
		t.Fatal(err)
	}
	adopt := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default"}, Data: map[string]string{"key": "before"}}
	if err := s.Store.Create(t.Context(), adopt); err != nil {
		t.Fatal(err)
	}
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": configMap("made", "x")})
	if _, err := syncNow(t, s, NewLocalGit(r.dir, "main")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "managed by Deployment web") {
		t.Fatalf("err = %v, want ErrInvalid naming the owner", err)
	}

	r.commit(map[string]string{"a.yaml": configMap("old", "after")})
	res := mustApply(t, s, NewLocalGit(r.dir, "main"))
	wantCounts(t, res, 0, 1, 0, 0)
	var cm corev1.ConfigMap
	if err := s.Store.Get(t.Context(), "default", "old", &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["key"] != "after" || cm.Labels[LabelSource] != "apps" || cm.UID != adopt.UID {
		t.Errorf("adopted object: data %v labels %v uid %s (was %s)", cm.Data, cm.Labels, cm.UID, adopt.UID)
	}
}

func TestRevisionProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"defined twice", map[string]string{"a.yaml": configMap("x", "1"), "b/c.yaml": configMap("x", "2")},
			[]string{"b/c.yaml:1", "defined twice", "also at a.yaml:1"}},
		{"source label set by hand", map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    keelson.dev/source: other\n"},
			[]string{"a.yaml:1", "keelson.dev/source=other"}},
		{"every file broken, all reported", map[string]string{"a.yaml": "kind: Nope\n", "b.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: three\n"},
			[]string{"a.yaml:1", "b.yaml:5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSyncer(t, "apps")
			r := newRepo(t)
			r.commit(tc.files)
			_, err := syncNow(t, s, NewLocalGit(r.dir, "main"))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if v := versions(t, s); len(v) != 0 {
				t.Errorf("objects written: %v", v)
			}
		})
	}
}

func TestEmptyRevisionIsRefused(t *testing.T) {
	s := newSyncer(t, "apps")
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	r.commit(map[string]string{"a.yaml": configMap("a", "1")})
	mustApply(t, s, src)
	r.commit(map[string]string{"a.yaml": ""})
	if _, err := syncNow(t, s, src); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "allowEmpty") {
		t.Fatalf("err = %v, want a refusal naming allowEmpty", err)
	}
	if len(versions(t, s)) != 1 {
		t.Fatal("the object was deleted")
	}
	s.AllowEmpty = true
	wantCounts(t, mustApply(t, s, src), 0, 0, 1, 0)
}

func TestLargeRevisionInKindOrderedChunks(t *testing.T) {
	s := newSyncer(t, "big")
	s.MaxTxnOps = 7
	s.TargetNamespace = "team"
	files := map[string]string{"ns.yaml": namespace("team")}
	for i := range 20 {
		files[fmt.Sprintf("cm/%02d.yaml", i)] = configMap(fmt.Sprintf("cm-%02d", i), "v")
	}
	r := newRepo(t)
	r.commit(files)
	res := mustApply(t, s, NewLocalGit(r.dir, "main"))
	wantCounts(t, res, 21, 0, 0, 0)
	// 5 objects a transaction: the seventh op is left for the store's
	// fence of a leader's writes, the sixth for admission's hold on the
	// namespace of the ConfigMaps (it has no quota), which a quota would
	// count.
	if res.Transactions != 5 {
		t.Errorf("transactions = %d, want 5", res.Transactions)
	}
	if res.Changes[0].Object != "namespaces team" {
		t.Errorf("first change %s, want the namespace", res.Changes[0].Object)
	}
	var cm corev1.ConfigMap
	if err := s.Store.Get(t.Context(), "team", "cm-07", &cm); err != nil {
		t.Errorf("object without a namespace is not in the target namespace: %v", err)
	}
}

func TestSchedulerBindingIsKept(t *testing.T) {
	ctx := t.Context()
	s := newSyncer(t, "apps")
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: localhost/p:1\n"
	r.commit(map[string]string{"pod.yaml": pod})
	mustApply(t, s, src)
	var p corev1.Pod
	if err := s.Store.Get(ctx, "default", "p", &p); err != nil {
		t.Fatal(err)
	}
	p.Spec.NodeName = "node-1"
	if err := s.Store.Update(ctx, &p); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"cm.yaml": configMap("c", "1")})
	wantCounts(t, mustApply(t, s, src), 1, 0, 0, 1)
	if err := s.Store.Get(ctx, "default", "p", &p); err != nil || p.Spec.NodeName != "node-1" {
		t.Fatalf("nodeName %q, %v: the binding was reverted", p.Spec.NodeName, err)
	}
	r.commit(map[string]string{"pod.yaml": strings.Replace(pod, "name: p\n", "name: p\n  labels: {tier: web}\n", 1)})
	wantCounts(t, mustApply(t, s, src), 0, 1, 0, 1)
	if err := s.Store.Get(ctx, "default", "p", &p); err != nil || p.Spec.NodeName != "node-1" || p.Labels["tier"] != "web" {
		t.Fatalf("nodeName %q labels %v, %v after a label change", p.Spec.NodeName, p.Labels, err)
	}
}

func TestLostRaceIsRetried(t *testing.T) {
	ctx := t.Context()
	s := newSyncer(t, "apps")
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	r.commit(map[string]string{"d.yaml": deployment("default", "web", 1)})
	mustApply(t, s, src)
	r.commit(map[string]string{"d.yaml": deployment("default", "web", 2)})
	races := 0
	s.beforeWrite = func() {
		if races == 2 {
			return
		}
		races++
		var d appsv1.Deployment
		if err := s.Store.Get(ctx, "default", "web", &d); err != nil {
			t.Fatal(err)
		}
		d.Status.ObservedGeneration = int64(10 + races)
		if err := s.Store.UpdateStatus(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	wantCounts(t, mustApply(t, s, src), 0, 1, 0, 0)
	var d appsv1.Deployment
	if err := s.Store.Get(ctx, "default", "web", &d); err != nil {
		t.Fatal(err)
	}
	if races != 2 || *d.Spec.Replicas != 2 || d.Status.ObservedGeneration != 12 {
		t.Errorf("races %d, replicas %d, observedGeneration %d", races, *d.Spec.Replicas, d.Status.ObservedGeneration)
	}

	// A controller that always wins makes the apply fail, with nothing lost.
	r.commit(map[string]string{"d.yaml": deployment("default", "web", 3)})
	races = -10
	if _, err := syncNow(t, s, src); !errors.Is(err, ErrApply) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v, want ErrApply wrapping store.ErrConflict", err)
	}
}

func TestPathMissingInRevision(t *testing.T) {
	s := newSyncer(t, "apps")
	s.Path = "clusters/prod"
	r := newRepo(t)
	r.commit(map[string]string{"clusters/dev/a.yaml": configMap("a", "1")})
	_, err := syncNow(t, s, NewLocalGit(r.dir, "main"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "clusters/prod") {
		t.Fatalf("err = %v, want ErrInvalid naming the path", err)
	}
}

// A claim and a volume from Git, bound by the binder: a later sync keeps
// the binding (volumeName, claimRef, the binding annotations) and counts
// neither as changed.
func TestVolumeBindingIsKept(t *testing.T) {
	ctx := t.Context()
	s := newSyncer(t, "apps")
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	pv := "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: disk}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  hostPath: {path: /srv/disk}\n"
	pvc := "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  storageClassName: \"\"\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"
	r.commit(map[string]string{"pv.yaml": pv, "pvc.yaml": pvc})
	mustApply(t, s, src)
	var c corev1.PersistentVolumeClaim
	var v corev1.PersistentVolume
	if err := s.Store.Get(ctx, "default", "data", &c); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.Get(ctx, "", "disk", &v); err != nil {
		t.Fatal(err)
	}
	// What the binder writes.
	c.Spec.VolumeName = "disk"
	c.Annotations["pv.kubernetes.io/bind-completed"] = "yes"
	c.Annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
	v.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "default", Name: "data", UID: c.UID}
	if err := s.Store.Txn(ctx, store.UpdateOp(&c), store.UpdateOp(&v)); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"cm.yaml": configMap("c", "1")})
	wantCounts(t, mustApply(t, s, src), 1, 0, 0, 2)
	if err := s.Store.Get(ctx, "default", "data", &c); err != nil || c.Spec.VolumeName != "disk" || c.Annotations["pv.kubernetes.io/bind-completed"] != "yes" {
		t.Fatalf("claim after a sync: volumeName %q, annotations %v, %v", c.Spec.VolumeName, c.Annotations, err)
	}
	if err := s.Store.Get(ctx, "", "disk", &v); err != nil || v.Spec.ClaimRef == nil || v.Spec.ClaimRef.UID != c.UID {
		t.Fatalf("volume after a sync: claimRef %+v, %v", v.Spec.ClaimRef, err)
	}
	// A change Git may make to a bound claim (a label, a larger request)
	// is applied, and the binding stays: volumeName is not taken for an
	// immutable field that changed.
	r.commit(map[string]string{"pvc.yaml": strings.Replace(strings.Replace(pvc, "name: data}", "name: data, labels: {tier: db}}", 1), "storage: 1Gi", "storage: 2Gi", 1)})
	wantCounts(t, mustApply(t, s, src), 0, 1, 0, 2)
	if err := s.Store.Get(ctx, "default", "data", &c); err != nil || c.Spec.VolumeName != "disk" || c.Labels["tier"] != "db" {
		t.Fatalf("claim after a label change: volumeName %q, labels %v, %v", c.Spec.VolumeName, c.Labels, err)
	}
}

// Pruning an object that carries finalizers marks it, as the Kubernetes
// API deletes, so that their controllers finish (a claim in use stays
// until its pods are gone); a later sync does not prune it again.
func TestPruneHonoursFinalizers(t *testing.T) {
	ctx := t.Context()
	s := newSyncer(t, "apps")
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	pvc := "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"
	r.commit(map[string]string{"pvc.yaml": pvc, "cm.yaml": configMap("c", "1")})
	mustApply(t, s, src)
	var c corev1.PersistentVolumeClaim
	if err := s.Store.Get(ctx, "default", "data", &c); err != nil {
		t.Fatal(err)
	}
	c.Finalizers = []string{"kubernetes.io/pvc-protection"}
	if err := s.Store.Update(ctx, &c); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"pvc.yaml": ""})
	wantCounts(t, mustApply(t, s, src), 0, 0, 1, 1)
	if err := s.Store.Get(ctx, "default", "data", &c); err != nil || c.DeletionTimestamp == nil {
		t.Fatalf("claim after its prune: deletionTimestamp %v, %v; want it marked", c.DeletionTimestamp, err)
	}
	rv := c.ResourceVersion
	r.commit(map[string]string{"cm.yaml": configMap("c", "2")})
	wantCounts(t, mustApply(t, s, src), 0, 1, 0, 0)
	if err := s.Store.Get(ctx, "default", "data", &c); err != nil || c.ResourceVersion != rv {
		t.Fatalf("a marked claim written again by a later sync: rv %s (was %s), %v", c.ResourceVersion, rv, err)
	}
}
