package reconciler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
)

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{name}},
			}},
			Template: podTemplate(name, "busybox"),
		},
	}
}

// waitRS waits until the ReplicaSet has exactly n pods, all ready, and a
// status saying so for its current generation.
func waitRS(t *testing.T, env *testEnv, name string, n int32) *appsv1.ReplicaSet {
	t.Helper()
	rs := &appsv1.ReplicaSet{}
	eventually(t, "replicaset "+name+" settles", func() (bool, string) {
		if err := env.st.Get(t.Context(), "default", name, rs); err != nil {
			return false, err.Error()
		}
		pods := ownedBy(listPods(t, env.st, "default", labels.Everything()), string(rs.UID))
		s := rs.Status
		ok := len(pods) == int(n) && s.Replicas == n && s.ReadyReplicas == n && s.AvailableReplicas == n &&
			s.FullyLabeledReplicas == n && s.ObservedGeneration == rs.Generation
		return ok, describePods(pods) + " status " + statusString(s)
	})
	return rs
}

func TestReplicaSetScale(t *testing.T) {
	env := newTestEnv(t)
	rs := newRS("web", 3)
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rs = waitRS(t, env, "web", 3)
	for _, p := range ownedBy(listPods(t, env.st, "default", labels.Everything()), string(rs.UID)) {
		ref := metav1.GetControllerOf(p)
		if ref.Kind != "ReplicaSet" || ref.Name != "web" || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s: controller reference %+v", p.Name, ref)
		}
		if p.Labels["app"] != "web" || p.Spec.Containers[0].Image != "busybox" {
			t.Errorf("pod %s not made from the template: %+v", p.Name, p)
		}
	}
	for _, n := range []int32{5, 1, 0, 2} {
		rs.Spec.Replicas = ptr.To(n)
		if err := env.update(rs); err != nil {
			t.Fatal(err)
		}
		rs = waitRS(t, env, "web", n)
	}
}

func TestReplicaSetScaleDownDeletesUnreadyFirst(t *testing.T) {
	env := newTestEnvWith(t, fakenode.Options{Ready: func(p *corev1.Pod) bool { return p.Labels["slow"] == "" }})
	rs := newRS("web", 3)
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rs = waitRS(t, env, "web", 3)
	// Two more pods from a template whose pods never become ready.
	rs.Spec.Replicas = ptr.To(int32(5))
	rs.Spec.Template.Labels["slow"] = "yes"
	if err := env.update(rs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "five pods, two of them bound but not ready", func() (bool, string) {
		pods := listPods(t, env.st, "default", labels.SelectorFromSet(labels.Set{"slow": "yes"}))
		bound := 0
		for _, p := range pods {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		return bound == 2 && len(listPods(t, env.st, "default", labels.Everything())) == 5, describePods(pods)
	})
	rs = env.getRS("web")
	rs.Spec.Replicas = ptr.To(int32(3))
	if err := env.update(rs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the two unready pods deleted", func() (bool, string) {
		all := listPods(t, env.st, "default", labels.Everything())
		for _, p := range all {
			if !podReady(p) {
				return false, describePods(all)
			}
		}
		return len(all) == 3, describePods(all)
	})
}

func TestReplicaSetAdoptAndRelease(t *testing.T) {
	env := newTestEnv(t)
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "orphan", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
	}
	if err := env.st.Create(t.Context(), orphan); err != nil {
		t.Fatal(err)
	}
	rs := newRS("web", 2)
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rs = waitRS(t, env, "web", 2)
	p := &corev1.Pod{}
	if err := env.st.Get(t.Context(), "default", "orphan", p); err != nil {
		t.Fatalf("the orphan was deleted instead of adopted: %v", err)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != rs.UID {
		t.Fatalf("orphan not adopted: %+v", p.OwnerReferences)
	}
	// Relabel it: the ReplicaSet releases it and makes a replacement.
	p.Labels = map[string]string{"app": "debug"}
	if err := env.update(p); err != nil {
		t.Fatal(err)
	}
	waitRS(t, env, "web", 2)
	eventually(t, "released pod has no owner", func() (bool, string) {
		if err := env.st.Get(t.Context(), "default", "orphan", p); err != nil {
			return false, err.Error()
		}
		return len(p.OwnerReferences) == 0, "still owned"
	})
}

func TestReplicationController(t *testing.T) {
	env := newTestEnv(t)
	tmpl := podTemplate("legacy", "busybox")
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "legacy"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To(int32(2)), Selector: map[string]string{"app": "legacy"}, Template: &tmpl,
		},
	}
	if err := env.st.Create(t.Context(), rc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rc has 2 ready pods", func() (bool, string) {
		cur := &corev1.ReplicationController{}
		if err := env.st.Get(t.Context(), "default", "legacy", cur); err != nil {
			return false, err.Error()
		}
		pods := ownedBy(listPods(t, env.st, "default", labels.Everything()), string(cur.UID))
		for _, p := range pods {
			if ref := metav1.GetControllerOf(p); ref.Kind != "ReplicationController" || ref.APIVersion != "v1" {
				return false, "wrong owner kind " + ref.Kind
			}
		}
		return len(pods) == 2 && cur.Status.ReadyReplicas == 2 && cur.Status.ObservedGeneration == cur.Generation, describePods(pods)
	})
}
