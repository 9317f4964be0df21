package reconciler

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
)

func newDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, image),
		},
	}
}

func (e *testEnv) getDeployment(name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	if err := e.st.Get(e.t.Context(), "default", name, d); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// waitRolledOut waits until the Deployment runs replicas ready pods of image
// only, and its status says the rollout is complete.
func waitRolledOut(t *testing.T, env *testEnv, name, image string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	eventually(t, "deployment "+name+" rolled out to "+image, func() (bool, string) {
		d = env.getDeployment(name)
		want := *d.Spec.Replicas
		pods := listPods(t, env.st, "default", labels.SelectorFromSet(labels.Set{"app": name}))
		for _, p := range pods {
			if p.Spec.Containers[0].Image != image || !podReady(p) {
				return false, describePods(pods)
			}
		}
		s := d.Status
		prog := deployCondition(s, appsv1.DeploymentProgressing)
		ok := len(pods) == int(want) && s.ObservedGeneration == d.Generation && s.UpdatedReplicas == want &&
			s.Replicas == want && s.AvailableReplicas == want && s.ReadyReplicas == want && s.UnavailableReplicas == 0 &&
			prog != nil && prog.Reason == ReasonNewRSAvailable
		return ok, fmt.Sprintf("%s status %+v", describePods(pods), s)
	})
	return d
}

func TestDeploymentRollingUpdateInvariants(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	tests := []struct {
		name           string
		replicas       int32
		surge, unavail *intstr.IntOrString
	}{
		{name: "defaults 25% of 10", replicas: 10},
		{name: "surge 1 unavailable 0", replicas: 5, surge: num(1), unavail: num(0)},
		{name: "surge 0 unavailable 2", replicas: 6, surge: num(0), unavail: num(2)},
		{name: "percent 50 of 3", replicas: 3, surge: pct("50%"), unavail: pct("50%")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			d := newDeployment("web", tt.replicas, "web:1")
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: tt.surge, MaxUnavailable: tt.unavail}
			if err := env.st.Create(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			d = waitRolledOut(t, env, "web", "web:1")
			surge, unavail, _ := surgeAndUnavailable(tt.replicas, d.Spec.Strategy.RollingUpdate)
			obs := observePods(t, env.st, "default", func(pods map[string]*corev1.Pod) error {
				var total, available int32
				for _, p := range pods {
					if podActive(p) {
						total++
					}
					if podReady(p) {
						available++
					}
				}
				if total > tt.replicas+surge {
					return fmt.Errorf("%d pods, more than replicas %d + maxSurge %d", total, tt.replicas, surge)
				}
				if available < tt.replicas-unavail {
					return fmt.Errorf("%d available, fewer than replicas %d - maxUnavailable %d", available, tt.replicas, unavail)
				}
				return nil
			})
			for _, image := range []string{"web:2", "web:3"} {
				d.Spec.Template.Spec.Containers[0].Image = image
				if err := env.update(d); err != nil {
					t.Fatal(err)
				}
				d = waitRolledOut(t, env, "web", image)
			}
			obs.report(t)
		})
	}
}

func TestDeploymentRollbackReusesReplicaSet(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 2, "web:1")
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	first := ownedReplicaSets(t, env, d)
	if len(first) != 1 || first[0].Annotations[RevisionAnnotation] != "1" {
		t.Fatalf("first rollout: %v", rsNames(first))
	}
	d.Spec.Template.Spec.Containers[0].Image = "web:2"
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:2")
	d.Spec.Template.Spec.Containers[0].Image = "web:1" // a Git revert
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	eventually(t, "the first ReplicaSet is reused as revision 3", func() (bool, string) {
		rss := ownedReplicaSets(t, env, d)
		for _, rs := range rss {
			if rs.UID == first[0].UID {
				return len(rss) == 2 && rs.Annotations[RevisionAnnotation] == "3", rsNames(rss)
			}
		}
		return false, "first replicaset gone: " + rsNames(rss)
	})
}

func TestDeploymentRecreate(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 3, "web:1")
	d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	obs := observePods(t, env.st, "default", func(pods map[string]*corev1.Pod) error {
		images := map[string]int{}
		for _, p := range pods {
			images[p.Spec.Containers[0].Image]++
		}
		if len(images) > 1 {
			return fmt.Errorf("old and new pods together: %v", images)
		}
		return nil
	})
	d.Spec.Template.Spec.Containers[0].Image = "web:2"
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, env, "web", "web:2")
	obs.report(t)
}

func TestDeploymentProgressDeadline(t *testing.T) {
	env := newTestEnvWith(t, fakenode.Options{Ready: func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image != "broken" }})
	d := newDeployment("web", 2, "web:1")
	d.Spec.ProgressDeadlineSeconds = ptr.To(int32(1))
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	d.Spec.Template.Spec.Containers[0].Image = "broken"
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Progressing=False ProgressDeadlineExceeded", func() (bool, string) {
		d = env.getDeployment("web")
		c := deployCondition(d.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == ReasonProgressDeadline, fmt.Sprintf("%+v", d.Status.Conditions)
	})
	if c := deployCondition(d.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("old pods still serve, Available should stay True: %+v", c)
	}
}

func TestDeploymentPausedAndHistory(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 2, "web:1")
	d.Spec.RevisionHistoryLimit = ptr.To(int32(1))
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	d.Spec.Paused = true
	d.Spec.Template.Spec.Containers[0].Image = "web:2"
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "paused status observed", func() (bool, string) {
		d = env.getDeployment("web")
		c := deployCondition(d.Status, appsv1.DeploymentProgressing)
		return d.Status.ObservedGeneration == d.Generation && c != nil && c.Reason == ReasonPaused, fmt.Sprintf("%+v", d.Status)
	})
	if rss := ownedReplicaSets(t, env, d); len(rss) != 1 {
		t.Fatalf("a paused deployment rolled out: %s", rsNames(rss))
	}
	for _, image := range []string{"web:2", "web:3", "web:4"} {
		d.Spec.Paused = false
		d.Spec.Template.Spec.Containers[0].Image = image
		if err := env.update(d); err != nil {
			t.Fatal(err)
		}
		d = waitRolledOut(t, env, "web", image)
	}
	eventually(t, "history trimmed to one old ReplicaSet", func() (bool, string) {
		rss := ownedReplicaSets(t, env, d)
		return len(rss) == 2, rsNames(rss)
	})
}

func ownedReplicaSets(t *testing.T, env *testEnv, d *appsv1.Deployment) []*appsv1.ReplicaSet {
	l, err := env.st.List(t.Context(), store.MustResource("replicasets.apps"), storeListNS("default"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*appsv1.ReplicaSet
	for _, o := range l.Items {
		rs := o.(*appsv1.ReplicaSet)
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	return out
}

func rsNames(rss []*appsv1.ReplicaSet) string {
	s := ""
	for _, rs := range rss {
		s += fmt.Sprintf(" %s(rev %s, %d/%d)", rs.Name, rs.Annotations[RevisionAnnotation], rs.Status.Replicas, replicasOf(rs.Spec.Replicas))
	}
	return s
}

// TestDeploymentAdoptsReplicaSet: a ReplicaSet left without owner (an orphan
// delete of its Deployment) is adopted by a Deployment that selects it and,
// having the same template, carries on without new pods.
func TestDeploymentAdoptsReplicaSet(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 2, "web:1")
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	before := listPods(t, env.st, "default", labels.Everything())
	if err := Delete(t.Context(), env.st, d, metav1.DeletePropagationOrphan); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deployment gone, replicaset orphaned", func() (bool, string) {
		l, _ := env.st.List(t.Context(), store.MustResource("deployments.apps"), storeListNS("default"))
		rss, _ := env.st.List(t.Context(), store.MustResource("replicasets.apps"), storeListNS("default"))
		return len(l.Items) == 0 && len(rss.Items) == 1 && len(rss.Items[0].GetOwnerReferences()) == 0, fmt.Sprint(len(l.Items), len(rss.Items))
	})
	d2 := newDeployment("web", 2, "web:1")
	if err := env.st.Create(t.Context(), d2); err != nil {
		t.Fatal(err)
	}
	d2 = waitRolledOut(t, env, "web", "web:1")
	if rss := ownedReplicaSets(t, env, d2); len(rss) != 1 {
		t.Fatalf("want the orphan adopted, got %s", rsNames(rss))
	}
	after := listPods(t, env.st, "default", labels.Everything())
	if describePods(after) != describePods(before) {
		t.Errorf("pods replaced on adoption:\nbefore %s\nafter  %s", describePods(before), describePods(after))
	}
}

func TestDeploymentScale(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 3, "web:1")
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	for _, n := range []int32{7, 2, 0, 4} {
		d.Spec.Replicas = ptr.To(n)
		if err := env.update(d); err != nil {
			t.Fatal(err)
		}
		d = waitRolledOut(t, env, "web", "web:1")
		if rss := ownedReplicaSets(t, env, d); len(rss) != 1 {
			t.Fatalf("scaling to %d made a new ReplicaSet: %s", n, rsNames(rss))
		}
	}
}
