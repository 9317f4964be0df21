package reconciler

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/admission"
	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store/etcdtest"
)

// A Deployment wants five pods where its namespace's quota has room for
// three: three are made, the ReplicaSet and the Deployment say why the
// others are not (ReplicaFailure, FailedCreate Events with the quota's
// numbers), the quota's status is counted by its controller; raised in
// Git, the quota lets the other two be made.
func TestQuotaStopsPodCreation(t *testing.T) {
	st := etcdtest.NewStore(t)
	st.SetAdmitter(admission.New(st))
	startFakeNode(t, st, fakenode.Options{})
	startControllers(t, st, testOptions())
	env := &testEnv{t: t, st: st}
	ctx := t.Context()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "compute"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("300m")}}}
	if err := st.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the quota counted", func() (bool, string) {
		cur := &corev1.ResourceQuota{}
		if err := st.Get(ctx, "default", "compute", cur); err != nil {
			return false, err.Error()
		}
		return admission.Current(cur), cur.Status.String()
	})
	d := newDeployment("web", 5, "nginx")
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	sel := labels.SelectorFromSet(labels.Set{"app": "web"})
	eventually(t, "3 pods and a ReplicaFailure", func() (bool, string) {
		pods := listPods(t, st, "default", sel)
		d := env.getDeployment("web")
		var cond *appsv1.DeploymentCondition
		for i, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentReplicaFailure {
				cond = &d.Status.Conditions[i]
			}
		}
		ok := len(pods) == 3 && cond != nil && cond.Reason == "FailedCreate" && strings.Contains(cond.Message, "exceeded quota: compute, requested: requests.cpu=100m, used: requests.cpu=300m, limited: requests.cpu=300m")
		return ok, describePods(pods) + " " + d.Status.String()
	})
	rsName := ""
	for _, p := range listPods(t, st, "default", sel) {
		rsName = p.OwnerReferences[0].Name
	}
	if evs := eventsFor(t, st, "ReplicaSet", rsName); !strings.Contains(evs, "FailedCreate Error creating: store: forbidden: pods ") {
		t.Errorf("the ReplicaSet's Events: %s", evs)
	}
	cur := &corev1.ResourceQuota{}
	if err := st.Get(ctx, "default", "compute", cur); err != nil {
		t.Fatal(err)
	}
	if u := cur.Status.Used[corev1.ResourceRequestsCPU]; u.String() != "300m" {
		t.Errorf("quota used %v", cur.Status.Used)
	}
	cur.Spec.Hard[corev1.ResourceRequestsCPU] = resource.MustParse("1")
	if err := st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, "5 pods, no ReplicaFailure", func() (bool, string) {
		pods := listPods(t, st, "default", sel)
		d := env.getDeployment("web")
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentReplicaFailure {
				return false, c.Message
			}
		}
		return len(pods) == 5, describePods(pods)
	})
}

// A quota is Progressing until counted, Degraded while its namespace uses
// more than it allows, Healthy otherwise; a Deployment whose pods a quota
// refuses is Degraded at once, not Progressing until its deadline.
func TestQuotaHealth(t *testing.T) {
	hard := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}
	q := func(used string) *corev1.ResourceQuota {
		q := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: hard}}
		if used != "" {
			q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse(used)}}
		}
		return q
	}
	for _, tc := range []struct {
		q    *corev1.ResourceQuota
		want Health
	}{
		{q(""), Health{Progressing, "waiting for the quota's usage to be counted"}},
		{q("2"), Health{Status: Healthy}},
		{q("3"), Health{Degraded, "the namespace uses more than its quota allows: pods 3 of 2"}},
	} {
		if got := HealthOf(tc.q); got != tc.want {
			t.Errorf("HealthOf(%v) = %+v, want %+v", tc.q.Status, got, tc.want)
		}
	}
	d := newDeployment("web", 3, "nginx")
	d.Generation, d.Status.ObservedGeneration = 1, 1
	d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "exceeded quota: compute"}}
	if got := HealthOf(d); got.Status != Degraded || got.Message != "FailedCreate: exceeded quota: compute" {
		t.Errorf("a Deployment a quota stops: %+v", got)
	}
}

// A Job of three pods at once where the quota has room for two: two are
// made (one at a time once the batch of three is refused), and the Job's
// Events say why the third is missing.
func TestQuotaStopsJobPods(t *testing.T) {
	st := etcdtest.NewStore(t)
	st.SetAdmitter(admission.New(st))
	startFakeNode(t, st, fakenode.Options{})
	startControllers(t, st, testOptions())
	env := &testEnv{t: t, st: st}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pods"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}}}
	if err := st.Create(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(t.Context(), newJob("batch", func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](3) })); err != nil {
		t.Fatal(err)
	}
	env.waitJob("batch", "2 pods and a FailedCreate", func(_ *batchv1.Job, pods []*corev1.Pod) bool {
		return len(pods) == 2 && strings.Contains(eventsFor(t, st, "Job", "batch"), "FailedCreate Error creating: store: forbidden: pods ")
	})
	if evs := eventsFor(t, st, "Job", "batch"); !strings.Contains(evs, "exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2") {
		t.Errorf("the Job's Events: %s", evs)
	}
}
