package admission_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/admission"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func admitted(t *testing.T) *store.Store {
	t.Helper()
	st := etcdtest.NewStore(t)
	st.SetAdmitter(admission.New(st))
	return st
}

func quota(name string, hard corev1.ResourceList, scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name},
		Spec: corev1.ResourceQuotaSpec{Hard: hard, Scopes: scopes}}
}

func pod(name, cpu, mem string) *corev1.Pod {
	c := corev1.Container{Name: "app", Image: "busybox"}
	if cpu != "" || mem != "" {
		c.Resources.Requests, c.Resources.Limits = corev1.ResourceList{}, corev1.ResourceList{}
	}
	if cpu != "" {
		c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse(cpu)
		c.Resources.Limits[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
		c.Resources.Limits[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
}

func list(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func used(t *testing.T, st *store.Store, name string) corev1.ResourceList {
	t.Helper()
	q := &corev1.ResourceQuota{}
	if err := st.Get(t.Context(), "team", name, q); err != nil {
		t.Fatal(err)
	}
	return q.Status.Used
}

func wantUsed(t *testing.T, st *store.Store, name string, want corev1.ResourceList) {
	t.Helper()
	got := used(t, st, name)
	for n, w := range want {
		if g, ok := got[n]; !ok || g.Cmp(w) != 0 {
			t.Errorf("quota %s used %s = %v, want %s (all: %v)", name, n, got[n], w.String(), got)
		}
	}
}

// Thirty writers race for a quota of ten pods and one CPU: exactly ten
// pods are created, each refused one is told the numbers, and status.used
// is what is stored, then follows deletions and pods that end.
func TestQuotaExactUnderConcurrentCreates(t *testing.T) {
	st := admitted(t)
	ctx := t.Context()
	if err := st.Create(ctx, quota("compute", list("pods", "10", "requests.cpu", "1", "count/configmaps", "2"))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Go(func() { errs[i] = st.Create(ctx, pod(fmt.Sprintf("p%d", i), "100m", "")) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrForbidden):
			t.Fatalf("a create failed otherwise than forbidden: %v", err)
		case !strings.Contains(err.Error(), "exceeded quota: compute, requested: ") || !strings.Contains(err.Error(), "limited: "):
			t.Errorf("refusal without the numbers: %v", err)
		}
	}
	if ok != 10 {
		t.Fatalf("%d pods created under a quota of 10", ok)
	}
	wantUsed(t, st, "compute", list("pods", "10", "requests.cpu", "1", "count/configmaps", "0"))
	l, err := st.List(ctx, store.MustResource("pods"), store.ListOptions{Namespace: "team"})
	if err != nil || len(l.Items) != 10 {
		t.Fatalf("stored pods: %d, %v", len(l.Items), err)
	}
	// A deleted pod frees its share; a pod that ended counts no more.
	p0 := l.Items[0].(*corev1.Pod)
	if err := st.Delete(ctx, store.MustResource("pods"), "team", p0.Name, nil); err != nil {
		t.Fatal(err)
	}
	p1 := l.Items[1].(*corev1.Pod)
	p1.Status.Phase = corev1.PodSucceeded
	if err := st.UpdateStatus(ctx, p1); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, st, "compute", list("pods", "8", "requests.cpu", "800m"))
	// Other kinds are counted by count/<resource>.
	for i := range 3 {
		err := st.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: fmt.Sprint("c", i)}})
		if (i < 2) != (err == nil) {
			t.Errorf("configmap %d: %v", i, err)
		}
	}
	wantUsed(t, st, "compute", list("count/configmaps", "2"))
}

// A quota made after its namespace's objects counts them at the first
// write it sees, and again when its limits change.
func TestQuotaCountsWhatExists(t *testing.T) {
	st := admitted(t)
	ctx := t.Context()
	for i := range 3 {
		if err := st.Create(ctx, pod(fmt.Sprint("old", i), "", "64Mi")); err != nil {
			t.Fatal(err)
		}
	}
	q := quota("mem", list("requests.memory", "256Mi", "pods", "4"))
	if err := st.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, pod("new", "", "128Mi")); err == nil || !strings.Contains(err.Error(), "requested: requests.memory=128Mi, used: requests.memory=192Mi, limited: requests.memory=256Mi") {
		t.Fatalf("a pod beyond the counted usage: %v", err)
	}
	if err := st.Create(ctx, pod("small", "", "64Mi")); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, st, "mem", list("requests.memory", "256Mi", "pods", "4"))
	// Raised: counted anew, and the pod fits.
	if err := st.Get(ctx, "team", "mem", q); err != nil {
		t.Fatal(err)
	}
	q.Spec.Hard = list("requests.memory", "1Gi", "pods", "5")
	if err := st.Update(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, pod("new", "", "128Mi")); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, st, "mem", list("requests.memory", "384Mi", "pods", "5"))
}

// Scoped quotas count the pods their scopes select; a quota limiting cpu
// refuses a pod that does not say its cpu.
func TestQuotaScopesAndRequiredRequests(t *testing.T) {
	st := admitted(t)
	ctx := t.Context()
	for _, q := range []*corev1.ResourceQuota{
		quota("besteffort", list("pods", "1"), corev1.ResourceQuotaScopeBestEffort),
		quota("jobs", list("limits.cpu", "1"), corev1.ResourceQuotaScopeTerminating),
	} {
		if err := st.Create(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Create(ctx, pod("be1", "", "")); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, pod("be2", "", "")); !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), "exceeded quota: besteffort") {
		t.Errorf("a second best-effort pod: %v", err)
	}
	if err := st.Create(ctx, pod("burstable", "", "64Mi")); err != nil {
		t.Errorf("a pod the scoped quota does not select: %v", err)
	}
	term := pod("term", "", "64Mi")
	term.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
	if err := st.Create(ctx, term); !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), "failed quota: jobs: must specify limits.cpu for: app") {
		t.Errorf("a terminating pod without a cpu limit: %v", err)
	}
	term = pod("term", "500m", "")
	term.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
	if err := st.Create(ctx, term); err != nil {
		t.Error(err)
	}
	wantUsed(t, st, "besteffort", list("pods", "1"))
	wantUsed(t, st, "jobs", list("limits.cpu", "500m"))
}

// A LimitRange's defaults appear in the stored pod, said in its annotation;
// a pod beyond its maximum or ratio is refused in Kubernetes' words.
func TestLimitRange(t *testing.T) {
	st := admitted(t)
	ctx := t.Context()
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "defaults"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:                 corev1.LimitTypeContainer,
		Default:              list("cpu", "500m", "memory", "256Mi"),
		DefaultRequest:       list("cpu", "100m", "memory", "128Mi"),
		Max:                  list("memory", "1Gi"),
		Min:                  list("cpu", "50m"),
		MaxLimitRequestRatio: list("cpu", "10"),
	}, {
		Type: corev1.LimitTypePersistentVolumeClaim,
		Max:  list("storage", "10Gi"),
	}}}}
	if err := st.Create(ctx, lr); err != nil {
		t.Fatal(err)
	}
	p := pod("plain", "", "")
	if err := st.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	stored := &corev1.Pod{}
	if err := st.Get(ctx, "team", "plain", stored); err != nil {
		t.Fatal(err)
	}
	r := stored.Spec.Containers[0].Resources
	if r.Requests.Cpu().String() != "100m" || r.Requests.Memory().String() != "128Mi" || r.Limits.Cpu().String() != "500m" || r.Limits.Memory().String() != "256Mi" {
		t.Errorf("stored resources %v", r)
	}
	if got := stored.Annotations[admission.LimitRangerAnnotation]; got != "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app" {
		t.Errorf("annotation %q", got)
	}
	for _, tc := range []struct {
		pod  *corev1.Pod
		want string
	}{
		{pod("big", "", "2Gi"), "maximum memory usage per Container is 1Gi, but limit is 2Gi"},
		{pod("tiny", "10m", ""), "minimum cpu usage per Container is 50m, but request is 10m"},
	} {
		err := st.Create(ctx, tc.pod)
		if !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("pod %s: %v, want %q", tc.pod.Name, err, tc.want)
		}
	}
	ratio := pod("ratio", "", "")
	ratio.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: list("cpu", "50m"), Limits: list("cpu", "1")}
	if err := st.Create(ctx, ratio); err == nil || !strings.Contains(err.Error(), "cpu max limit to request ratio per Container is 10, but provided ratio is 20.000000") {
		t.Errorf("ratio: %v", err)
	}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: list("storage", "20Gi")}}}
	if err := st.Create(ctx, claim); err == nil || !strings.Contains(err.Error(), "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi") {
		t.Errorf("claim: %v", err)
	}
}
