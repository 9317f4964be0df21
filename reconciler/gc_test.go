package reconciler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
)

func countAll(t *testing.T, st *store.Store, ns string, names ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range names {
		l, err := st.List(t.Context(), store.MustResource(n), store.ListOptions{Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		out[n] = len(l.Items)
	}
	return out
}

func TestCascadeDeleteBackground(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 3, "web:1")
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	if err := Delete(t.Context(), env.st, d, metav1.DeletePropagationBackground); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replicasets and pods collected", func() (bool, string) {
		c := countAll(t, env.st, "default", "replicasets.apps", "pods")
		return c["replicasets.apps"] == 0 && c["pods"] == 0, fmt.Sprint(c)
	})
}

func TestCascadeDeleteForeground(t *testing.T) {
	env := newTestEnv(t)
	rs := newRS("web", 2)
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rs = waitRS(t, env, "web", 2)
	if err := Delete(t.Context(), env.st, rs, metav1.DeletePropagationForeground); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pods, then the replicaset, deleted", func() (bool, string) {
		c := countAll(t, env.st, "default", "replicasets.apps", "pods")
		return c["replicasets.apps"] == 0 && c["pods"] == 0, fmt.Sprint(c)
	})
}

func TestOrphanDelete(t *testing.T) {
	env := newTestEnv(t)
	rs := newRS("web", 2)
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rs = waitRS(t, env, "web", 2)
	if err := Delete(t.Context(), env.st, rs, metav1.DeletePropagationOrphan); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replicaset gone, its pods kept without owner", func() (bool, string) {
		c := countAll(t, env.st, "default", "replicasets.apps")
		pods := listPods(t, env.st, "default", labels.Everything())
		for _, p := range pods {
			if len(p.OwnerReferences) > 0 {
				return false, "pod still owned: " + p.Name
			}
		}
		return c["replicasets.apps"] == 0 && len(pods) == 2, fmt.Sprint(c, describePods(pods))
	})
}

func TestDanglingOwnerCollected(t *testing.T) {
	env := newTestEnv(t)
	owner := newRS("gone", 0)
	if err := env.st.Create(t.Context(), owner); err != nil {
		t.Fatal(err)
	}
	live := newRS("live", 0)
	if err := env.st.Create(t.Context(), live); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, owners ...*metav1.OwnerReference) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"x": "y"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		for _, o := range owners {
			p.OwnerReferences = append(p.OwnerReferences, *o)
		}
		if err := env.st.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	ref := func(rs metav1.Object) *metav1.OwnerReference {
		return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.GetName(), UID: rs.GetUID(), Controller: ptr.To(false)}
	}
	mk("only-gone", ref(owner))
	mk("both", ref(owner), ref(live))
	if err := env.st.Delete(t.Context(), store.MustResource("replicasets.apps"), "default", "gone", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod with no owner left collected, the other keeps its live owner", func() (bool, string) {
		pods := listPods(t, env.st, "default", labels.Everything())
		if len(pods) != 1 || pods[0].Name != "both" {
			return false, describePods(pods)
		}
		refs := pods[0].OwnerReferences
		return len(refs) == 1 && refs[0].UID == live.UID, fmt.Sprint(refs)
	})
}

func TestNamespaceDelete(t *testing.T) {
	env := newTestEnv(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	if err := env.st.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	d := newDeployment("web", 2, "web:1")
	d.Namespace = "team"
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "cfg"}}
	if err := env.st.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pods running in the namespace", func() (bool, string) {
		pods := listPods(t, env.st, "team", labels.Everything())
		return len(pods) == 2, describePods(pods)
	})
	// The namespace controller marks the namespace Active on its own queue,
	// which may come after the pods.
	eventually(t, "namespace Active", func() (bool, string) {
		if err := env.st.Get(t.Context(), "", "team", ns); err != nil {
			t.Fatal(err)
		}
		return ns.Status.Phase == corev1.NamespaceActive, fmt.Sprintf("phase %q", ns.Status.Phase)
	})
	// Watch the namespace so the Terminating phase is seen even if brief.
	w, err := env.st.Watch(t.Context(), store.MustResource("namespaces"), store.WatchOptions{Name: "team", ResourceVersion: ns.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := Delete(t.Context(), env.st, ns, ""); err != nil {
		t.Fatal(err)
	}
	sawTerminating := false
	for ev := range w.ResultChan() {
		if cur, ok := ev.Object.(*corev1.Namespace); ok && cur.Status.Phase == corev1.NamespaceTerminating {
			sawTerminating = true
		}
		if ev.Type == "DELETED" {
			break
		}
	}
	if !sawTerminating {
		t.Error("namespace never showed phase Terminating")
	}
	c := countAll(t, env.st, "team", "deployments.apps", "replicasets.apps", "pods", "configmaps")
	for k, n := range c {
		if n != 0 {
			t.Errorf("%d %s left in the deleted namespace", n, k)
		}
	}
}
