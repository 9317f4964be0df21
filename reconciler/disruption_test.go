package reconciler

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store/etcdtest"
)

// A NodePolicy drains node a, which runs both pods of a Deployment whose
// PodDisruptionBudget keeps one available: one pod is evicted, and the
// drain stops there while its replacement on node b is not Ready (the
// policy says which budget holds it); once the replacement is Ready the
// drain goes on, and the policy says the node is drained.
func TestDrainStopsAtDisruptionBudget(t *testing.T) {
	st := etcdtest.NewStore(t)
	ctx := t.Context()
	for _, name := range []string{"a", "b"} {
		n := testNode(name)
		n.Spec.Unschedulable = name == "b" // both pods start on a
		if err := st.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	var bReady atomic.Bool
	startFakeNode(t, st, fakenode.Options{Node: "a", NoBind: true, Terminate: true})
	startFakeNode(t, st, fakenode.Options{Node: "b", NoBind: true, Terminate: true, Ready: func(*corev1.Pod) bool { return bReady.Load() }})
	opts := testOptions()
	opts.Scheduler.Disabled = false
	startControllers(t, st, opts)

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptrIntOrString(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	if err := st.Create(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, newDeployment("web", 2, "nginx")); err != nil {
		t.Fatal(err)
	}
	sel := labels.SelectorFromSet(labels.Set{"app": "web"})
	on := func(node string) (ready, other int, names []string) {
		for _, p := range listPods(t, st, "default", sel) {
			if p.Spec.NodeName != node || p.DeletionTimestamp != nil {
				continue
			}
			if podReady(p) {
				ready++
			} else {
				other++
			}
			names = append(names, p.Name)
		}
		return ready, other, names
	}
	budget := func() policyv1.PodDisruptionBudgetStatus {
		b := &policyv1.PodDisruptionBudget{}
		if err := st.Get(ctx, "default", "web", b); err != nil {
			t.Fatal(err)
		}
		return b.Status
	}
	eventually(t, "2 pods Ready on a, the budget counted", func() (bool, string) {
		r, _, _ := on("a")
		s := budget()
		return r == 2 && s.CurrentHealthy == 2 && s.DesiredHealthy == 1 && s.DisruptionsAllowed == 1 && s.ExpectedPods == 2,
			fmt.Sprintf("%d ready on a; budget %+v", r, s)
	})

	b := &corev1.Node{}
	if err := st.Get(ctx, "", "b", b); err != nil {
		t.Fatal(err)
	}
	b.Spec.Unschedulable = false
	if err := st.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	policy := &keelsonv1alpha1.NodePolicy{ObjectMeta: metav1.ObjectMeta{Name: "maintenance"},
		Spec: keelsonv1alpha1.NodePolicySpec{NodeNames: []string{"a"}, Drain: true}}
	if err := st.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	drained := func() *metav1.Condition {
		p := &keelsonv1alpha1.NodePolicy{}
		if err := st.Get(ctx, "", "maintenance", p); err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(p.Status.Conditions, keelsonv1alpha1.ConditionDrained)
	}
	const held = "PodDisruptionBudget default/web allows no disruption (1 healthy, 1 needed)"
	eventually(t, "the drain held by the budget", func() (bool, string) {
		ra, _, _ := on("a")
		_, ob, _ := on("b")
		c := drained()
		return ra == 1 && ob == 1 && c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, held),
			fmt.Sprintf("a: %d ready, b: %d not ready, Drained %+v", ra, ob, c)
	})
	// Held, not merely slow: the budget allows nothing, and the pod on a
	// is not marked for deletion while that lasts.
	if s := budget(); s.DisruptionsAllowed != 0 || s.CurrentHealthy != 1 {
		t.Fatalf("budget while held: %+v", s)
	}
	if ra, _, _ := on("a"); ra != 1 {
		t.Fatalf("the drain went past the budget: %d pods left on a", ra)
	}

	bReady.Store(true)
	_, _, names := on("b")
	for _, name := range names { // the fake node looks at a pod when it changes
		touchPod(t, st, name)
	}
	eventually(t, "a drained, both pods Ready on b", func() (bool, string) {
		ra, oa, _ := on("a")
		rb, _, _ := on("b")
		c := drained()
		return ra+oa == 0 && rb == 2 && c != nil && c.Status == metav1.ConditionTrue && c.Reason == keelsonv1alpha1.ReasonDrained,
			fmt.Sprintf("a: %d, b: %d ready, Drained %+v", ra+oa, rb, c)
	})
	eventually(t, "the budget counts both again", func() (bool, string) {
		s := budget()
		return s.CurrentHealthy == 2 && s.DisruptionsAllowed == 1 && len(s.DisruptedPods) == 0, fmt.Sprintf("%+v", s)
	})
}

func ptrIntOrString(v intstr.IntOrString) *intstr.IntOrString { return &v }

// A budget's numbers as Kubernetes counts them: maxUnavailable and a
// percentage minAvailable against the Deployment's replicas (rounded up),
// an integer minAvailable against the pods there are; the condition says
// whether a disruption is allowed.
func TestDisruptionBudgetStatus(t *testing.T) {
	st := etcdtest.NewStore(t)
	ctx := t.Context()
	startFakeNode(t, st, fakenode.Options{Ready: func(p *corev1.Pod) bool { return p.Labels["ready"] != "no" }})
	startControllers(t, st, testOptions())
	d := newDeployment("web", 4, "nginx")
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		name     string
		min, max *intstr.IntOrString
	}{
		{"max-25", nil, ptrIntOrString(intstr.FromString("25%"))},
		{"min-50", ptrIntOrString(intstr.FromString("50%")), nil},
		{"min-5", ptrIntOrString(intstr.FromInt32(5)), nil},
	} {
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: b.name},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: b.min, MaxUnavailable: b.max,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		if err := st.Create(ctx, pdb); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"max-25": "expected 4 desired 3 healthy 4 allowed 1 True/SufficientPods",
		"min-50": "expected 4 desired 2 healthy 4 allowed 2 True/SufficientPods",
		"min-5":  "expected 4 desired 5 healthy 4 allowed 0 False/InsufficientPods",
	}
	for name, w := range want {
		eventually(t, "budget "+name, func() (bool, string) {
			b := &policyv1.PodDisruptionBudget{}
			if err := st.Get(ctx, "default", name, b); err != nil {
				return false, err.Error()
			}
			s := b.Status
			c := meta.FindStatusCondition(s.Conditions, policyv1.DisruptionAllowedCondition)
			got := fmt.Sprintf("expected %d desired %d healthy %d allowed %d", s.ExpectedPods, s.DesiredHealthy, s.CurrentHealthy, s.DisruptionsAllowed)
			if c != nil {
				got += fmt.Sprintf(" %s/%s", c.Status, c.Reason)
			}
			return got == w && s.ObservedGeneration == b.Generation && HealthOf(b).Status == map[bool]HealthStatus{true: Healthy, false: Degraded}[name != "min-5"], got
		})
	}
}
