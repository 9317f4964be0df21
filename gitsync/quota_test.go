package gitsync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/admission"
)

const teamQuota = `apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: team}
spec:
  hard: {pods: "%s", requests.cpu: "1", requests.storage: 5Gi}
`

const teamLimits = `apiVersion: v1
kind: LimitRange
metadata: {name: defaults, namespace: team}
spec:
  limits:
  - type: Container
    defaultRequest: {cpu: 200m}
`

const teamSet = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: team}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: localhost/db:1, resources: {requests: {cpu: 10m}}}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 2Gi}}}
`

// A revision is weighed against its namespaces' quotas as it will run: a
// Deployment's replicas with the LimitRange's default requests, a
// StatefulSet's claims, the pods already there that Git did not make. One
// that would break a quota is refused whole, at the file:line of what adds
// the most, with the numbers; one that only lowers a quota below what runs
// is applied, as Kubernetes lets a namespace be over its quota. keelson
// plan against the cluster says so before the merge.
func TestSyncRefusesQuotaBreach(t *testing.T) {
	s := newSyncer(t, "apps")
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	ctx := t.Context()
	// A pod outside Git counts: 300m.
	outside := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "debug"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "sh", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("300m")}}}}}}
	if err := s.Store.Create(ctx, outside); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"ns.yaml": namespace("team"), "quota.yaml": fmt.Sprintf(teamQuota, "10"), "limits.yaml": teamLimits,
		"web.yaml": deployment("team", "web", 2)})
	if _, err := syncNow(t, s, src); err != nil {
		t.Fatalf("2 × 200m and 300m under 1 cpu: %v", err)
	}

	r.commit(map[string]string{"web.yaml": deployment("team", "web", 4)})
	res, err := syncNow(t, s, src)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("4 × 200m and 300m under 1 cpu: %v, want refused", err)
	}
	want := "web.yaml:1: Deployment team/web: breaks ResourceQuota team/compute: requests.cpu would be 1100m, over its hard limit of 1 (700m now); the most from Deployment team/web: 4 pods × 200m"
	if len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0].Error(), want) {
		t.Fatalf("errors %q\nwant %q", res.Errors, want)
	}
	// keelson plan against the cluster says the same before the merge.
	p, err := PlanCluster(ctx, r.dir, "main", storeCluster{s.Store}, PlanOptions{Schema: testSchema(t), Name: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Invalid() || len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0].Error(), want) {
		t.Errorf("plan errors %q\nwant %q", p.Errors, want)
	}
	d := &appsv1.Deployment{}
	if err := s.Store.Get(ctx, "team", "web", d); err != nil || *d.Spec.Replicas != 2 {
		t.Fatalf("the refused revision was applied: %v, %v", d.Spec.Replicas, err)
	}

	// Claims of a StatefulSet's templates count, three of 2Gi in 5Gi.
	r.commit(map[string]string{"web.yaml": deployment("team", "web", 2), "db.yaml": teamSet})
	res, err = syncNow(t, s, src)
	want = "db.yaml:1: StatefulSet team/db: breaks ResourceQuota team/compute: requests.storage would be 6Gi, over its hard limit of 5Gi (0 now); the most from StatefulSet team/db: 3 persistentvolumeclaims × 2Gi"
	if !errors.Is(err, ErrInvalid) || len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0].Error(), want) {
		t.Fatalf("%v\nerrors %q\nwant %q", err, res.Errors, want)
	}

	// Lowering the quota below what runs is no breach of this revision.
	r.commit(map[string]string{"db.yaml": "", "quota.yaml": fmt.Sprintf(teamQuota, "1")})
	if _, err := syncNow(t, s, src); err != nil {
		t.Fatalf("a quota lowered below its use: %v", err)
	}
	// But a revision that adds to a namespace over its quota is refused.
	r.commit(map[string]string{"web.yaml": deployment("team", "web", 3)})
	if _, err := syncNow(t, s, src); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "pods would be 4, over its hard limit of 1 (3 now)") {
		t.Fatalf("adding to a namespace over its quota: %v", err)
	}
}

// A pod from Git that a LimitRange gave requests when it was stored, and
// ServiceAccount admission its account and token volume, is not drift: the
// next sync leaves it as it is.
func TestLimitRangeDefaultsAreNotDrift(t *testing.T) {
	s := newSyncer(t, "apps")
	s.Store.SetAdmitter(admission.New(s.Store))
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	r.commit(map[string]string{"limits.yaml": teamLimits, "ns.yaml": namespace("team"),
		"pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: one, namespace: team}\nspec:\n  containers: [{name: app, image: busybox}]\n"})
	if _, err := syncNow(t, s, src); err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{}
	if err := s.Store.Get(t.Context(), "team", "one", p); err != nil {
		t.Fatal(err)
	}
	if got := p.Spec.Containers[0].Resources.Requests.Cpu().String(); got != "200m" {
		t.Fatalf("stored pod's cpu request %s, want the LimitRange's 200m", got)
	}
	if p.Spec.ServiceAccountName != "default" || len(p.Spec.Volumes) != 1 || !strings.HasPrefix(p.Spec.Volumes[0].Name, admission.APIAccessVolumePrefix) {
		t.Fatalf("stored pod's account %q and volumes %+v, want default's token volume", p.Spec.ServiceAccountName, p.Spec.Volumes)
	}
	r.commit(map[string]string{"cm.yaml": configMap("x", "y")})
	res, err := syncNow(t, s, src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated != 0 || res.DriftCorrected != 0 {
		t.Errorf("the pod was written again: %+v", res)
	}
}
