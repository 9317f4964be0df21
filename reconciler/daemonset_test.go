package reconciler

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// daemonEnv runs the controllers with simulated nodes: a Node object and a
// fake node agent for each name.
func daemonEnv(t *testing.T, nodes ...*corev1.Node) *testEnv {
	st := etcdtest.NewStore(t)
	env := &testEnv{t: t, st: st}
	for _, n := range nodes {
		env.addNode(n)
	}
	startControllers(t, st, testOptions())
	return env
}

func (e *testEnv) addNode(n *corev1.Node) {
	e.t.Helper()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if err := e.st.Create(e.t.Context(), n); err != nil {
		e.t.Fatal(err)
	}
	startFakeNode(e.t, e.st, fakenode.Options{Node: n.Name})
}

func simNode(name string, lbls map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Spec: corev1.NodeSpec{Taints: taints}}
}

func newDaemonSet(name string, mutate func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "agent:1"),
		},
	}
	if mutate != nil {
		mutate(ds)
	}
	return ds
}

func (e *testEnv) daemonSet(name string) *appsv1.DaemonSet {
	return getDefault(e, name, &appsv1.DaemonSet{})
}

// placement is where the DaemonSet's pods are, by node, with their images:
// "node-a=agent:1 node-b=agent:1".
func (e *testEnv) placement(ds *appsv1.DaemonSet) string {
	var out []string
	for _, p := range ownedBy(listPods(e.t, e.st, "default", labels.Everything()), string(ds.UID)) {
		out = append(out, p.Spec.NodeName+"="+p.Spec.Containers[0].Image)
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

func dsStatus(s appsv1.DaemonSetStatus) string {
	return fmt.Sprintf("desired=%d current=%d ready=%d updated=%d available=%d misscheduled=%d unavailable=%d",
		s.DesiredNumberScheduled, s.CurrentNumberScheduled, s.NumberReady, s.UpdatedNumberScheduled, s.NumberAvailable,
		s.NumberMisscheduled, s.NumberUnavailable)
}

// waitPlacement waits until the DaemonSet's pods are where want says and
// its status counts n of them, all ready and up to date.
func (e *testEnv) waitPlacement(name, want string, n int32) *appsv1.DaemonSet {
	e.t.Helper()
	var ds *appsv1.DaemonSet
	eventually(e.t, name+" on "+want, func() (bool, string) {
		ds = e.daemonSet(name)
		s := ds.Status
		got := e.placement(ds)
		return got == want && s.DesiredNumberScheduled == n && s.CurrentNumberScheduled == n && s.NumberReady == n &&
				s.UpdatedNumberScheduled == n && s.NumberAvailable == n && s.NumberMisscheduled == 0 && s.ObservedGeneration == ds.Generation,
			got + " " + dsStatus(s)
	})
	return ds
}

// A pod on every node the DaemonSet's pods may run on: the node selector,
// taints (tolerated or not), a node that joins, a node relabelled, a
// cordoned node (daemon pods tolerate it).
func TestDaemonSetPlacement(t *testing.T) {
	gpu := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	env := daemonEnv(t,
		simNode("node-a", map[string]string{"disk": "ssd"}),
		simNode("node-b", map[string]string{"disk": "ssd"}, gpu),
		simNode("node-c", map[string]string{"disk": "hdd"}))
	ds := newDaemonSet("logs", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	if err := env.st.Create(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	got := env.waitPlacement("logs", "[node-a=agent:1]", 1)
	pods := ownedBy(listPods(t, env.st, "default", labels.Everything()), string(got.UID))
	p := pods[0]
	if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == "" || p.Labels["app"] != "logs" {
		t.Errorf("pod labels %v", p.Labels)
	}
	if !slices.ContainsFunc(p.Spec.Tolerations, func(tol corev1.Toleration) bool { return tol.Key == corev1.TaintNodeUnreachable }) ||
		!slices.ContainsFunc(p.Spec.Tolerations, func(tol corev1.Toleration) bool { return tol.Key == corev1.TaintNodeUnschedulable }) {
		t.Errorf("pod tolerations %+v lack the daemon ones", p.Spec.Tolerations)
	}
	terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != "node-a" {
		t.Errorf("pod node affinity %+v", terms)
	}
	if h := HealthOf(got); h.Status != Healthy {
		t.Errorf("health %v", h)
	}

	// Tolerating the taint brings node-b in.
	ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	if err := env.update(ds); err != nil {
		t.Fatal(err)
	}
	env.waitPlacement("logs", "[node-a=agent:1 node-b=agent:1]", 2)
	// A node that joins gets one; one relabelled loses its pod; a cordoned
	// one keeps it.
	env.addNode(simNode("node-d", map[string]string{"disk": "ssd"}))
	env.waitPlacement("logs", "[node-a=agent:1 node-b=agent:1 node-d=agent:1]", 3)
	relabel := func(name string, change func(*corev1.Node)) {
		n := &corev1.Node{}
		if err := env.st.Get(t.Context(), "", name, n); err != nil {
			t.Fatal(err)
		}
		change(n)
		if err := env.st.Update(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	relabel("node-a", func(n *corev1.Node) { n.Labels["disk"] = "hdd" })
	relabel("node-b", func(n *corev1.Node) { n.Spec.Unschedulable = true })
	env.waitPlacement("logs", "[node-b=agent:1 node-d=agent:1]", 2)
}

// A rolling update with maxUnavailable 1 replaces one node's pod at a time:
// never two nodes without an available pod, never two pods on a node. With
// maxSurge 1 and maxUnavailable 0, the new pod starts beside the old: never
// a node without an available pod.
func TestDaemonSetRollingUpdate(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		maxUnavailable, surge int
		minAvailable, maxPods int
	}{
		{"maxUnavailable", 1, 0, 2, 3},
		{"maxSurge", 0, 1, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := daemonEnv(t, simNode("node-a", nil), simNode("node-b", nil), simNode("node-c", nil))
			ds := newDaemonSet("proxy", func(ds *appsv1.DaemonSet) {
				ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromInt(tc.maxUnavailable)), MaxSurge: ptr.To(intstr.FromInt(tc.surge))}}
			})
			if err := env.st.Create(t.Context(), ds); err != nil {
				t.Fatal(err)
			}
			got := env.waitPlacement("proxy", "[node-a=agent:1 node-b=agent:1 node-c=agent:1]", 3)
			watchRollout := env.watchDaemonPods(got)
			ds.Spec.Template.Spec.Containers[0].Image = "agent:2"
			if err := env.update(ds); err != nil {
				t.Fatal(err)
			}
			env.waitPlacement("proxy", "[node-a=agent:2 node-b=agent:2 node-c=agent:2]", 3)
			minAvailable, maxPods := watchRollout()
			if minAvailable < tc.minAvailable || maxPods > tc.maxPods {
				t.Errorf("during the rollout: at least %d nodes with an available pod (want %d), at most %d pods (want %d)",
					minAvailable, tc.minAvailable, maxPods, tc.maxPods)
			}
		})
	}
}

// watchDaemonPods follows the DaemonSet's pods until the returned function
// is called, and then says the fewest nodes that had a ready pod and the
// most pods there were at once.
func (e *testEnv) watchDaemonPods(ds *appsv1.DaemonSet) func() (minNodes, maxPods int) {
	e.t.Helper()
	w, err := e.st.Watch(e.t.Context(), store.MustResource("pods"), store.WatchOptions{Namespace: "default"})
	if err != nil {
		e.t.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for _, p := range ownedBy(listPods(e.t, e.st, "default", labels.Everything()), string(ds.UID)) {
		pods[p.Name] = p
	}
	var mu sync.Mutex
	minNodes, maxPods := len(pods), len(pods)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || metav1.GetControllerOf(p) == nil || metav1.GetControllerOf(p).UID != ds.UID {
				continue
			}
			mu.Lock()
			if ev.Type == watch.Deleted {
				delete(pods, p.Name)
			} else {
				pods[p.Name] = p
			}
			nodes := map[string]bool{}
			for _, q := range pods {
				if podReady(q) {
					nodes[q.Spec.NodeName] = true
				}
			}
			minNodes, maxPods = min(minNodes, len(nodes)), max(maxPods, len(pods))
			mu.Unlock()
		}
	}()
	return func() (int, int) {
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return minNodes, maxPods
	}
}

// OnDelete leaves pods of the old template until they are deleted; a
// failed daemon pod is replaced.
func TestDaemonSetOnDeleteAndFailed(t *testing.T) {
	env := daemonEnv(t, simNode("node-a", nil), simNode("node-b", nil))
	ds := newDaemonSet("ondelete", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	})
	if err := env.st.Create(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	got := env.waitPlacement("ondelete", "[node-a=agent:1 node-b=agent:1]", 2)
	ds.Spec.Template.Spec.Containers[0].Image = "agent:2"
	if err := env.update(ds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "status sees the new template", func() (bool, string) {
		s := env.daemonSet("ondelete").Status
		return s.UpdatedNumberScheduled == 0 && s.ObservedGeneration == env.daemonSet("ondelete").Generation, dsStatus(s)
	})
	if p := env.placement(got); p != "[node-a=agent:1 node-b=agent:1]" {
		t.Fatalf("OnDelete replaced pods: %s", p)
	}
	for _, p := range ownedBy(listPods(t, env.st, "default", labels.Everything()), string(got.UID)) {
		if p.Spec.NodeName == "node-a" {
			if err := env.st.Delete(t.Context(), store.MustResource("pods"), "default", p.Name, nil); err != nil {
				t.Fatal(err)
			}
		}
		if p.Spec.NodeName == "node-b" {
			env.finishPod(p, 1)
		}
	}
	// node-a's replacement is of the new template; node-b's failed pod is
	// replaced too, and by the new template (it is a new pod).
	eventually(t, "replacements", func() (bool, string) {
		p := env.placement(got)
		return p == "[node-a=agent:2 node-b=agent:2]", p
	})
}

// A NoSchedule taint keeps new daemon pods off a node but leaves the
// running one (counted misscheduled, as kubectl shows); a NoExecute taint
// removes it.
func TestDaemonSetTaintEffects(t *testing.T) {
	env := daemonEnv(t, simNode("node-a", nil), simNode("node-b", nil))
	if err := env.st.Create(t.Context(), newDaemonSet("mon", nil)); err != nil {
		t.Fatal(err)
	}
	env.waitPlacement("mon", "[node-a=agent:1 node-b=agent:1]", 2)
	taint := func(name string, effect corev1.TaintEffect) {
		n := &corev1.Node{}
		if err := env.st.Get(t.Context(), "", name, n); err != nil {
			t.Fatal(err)
		}
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Effect: effect})
		if err := env.st.Update(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	taint("node-b", corev1.TaintEffectNoSchedule)
	eventually(t, "node-b's pod kept, counted misscheduled", func() (bool, string) {
		ds := env.daemonSet("mon")
		return ds.Status.NumberMisscheduled == 1 && ds.Status.DesiredNumberScheduled == 1 && env.placement(ds) == "[node-a=agent:1 node-b=agent:1]",
			env.placement(ds) + " " + dsStatus(ds.Status)
	})
	taint("node-b", corev1.TaintEffectNoExecute)
	env.waitPlacement("mon", "[node-a=agent:1]", 1)
}

// A daemon pod that fails at once is replaced after a delay that doubles
// (1 s, then 2 s, ...), not at once for ever.
func TestDaemonSetFailedPodBackoff(t *testing.T) {
	st := etcdtest.NewStore(t)
	n := simNode("node-a", nil)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if err := st.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	names := map[string]bool{}
	var at []time.Time // when each pod ran, and at once failed
	startFakeNode(t, st, fakenode.Options{Node: "node-a", Exit: func(p *corev1.Pod) (int32, bool) {
		mu.Lock()
		defer mu.Unlock()
		if !names[p.Name] {
			names[p.Name] = true
			at = append(at, time.Now())
		}
		return 1, true
	}})
	startControllers(t, st, testOptions())
	if err := st.Create(t.Context(), newDaemonSet("crashy", nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three pods tried", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(at) >= 3, fmt.Sprint(len(at))
	})
	mu.Lock()
	defer mu.Unlock()
	if gap1, gap2 := at[1].Sub(at[0]), at[2].Sub(at[1]); gap1 < time.Second || gap2 < 2*time.Second {
		t.Errorf("replacements after %s and %s, want at least 1s and 2s", gap1, gap2)
	}
}
