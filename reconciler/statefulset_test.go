package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// readyGate decides which pods a fake node makes Ready: those opened by
// name, or all once openAll is set.
type readyGate struct {
	mu      sync.Mutex
	open    map[string]bool
	openAll bool
}

func (g *readyGate) ready(p *corev1.Pod) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.openAll || g.open[p.Name]
}

// let makes the named pods Ready: the gate opens and each pod is touched so
// that the fake node looks at it again.
func (g *readyGate) let(t *testing.T, st *store.Store, names ...string) {
	t.Helper()
	g.mu.Lock()
	if g.open == nil {
		g.open = map[string]bool{}
	}
	for _, n := range names {
		g.open[n] = true
	}
	g.mu.Unlock()
	for _, n := range names {
		touchPod(t, st, n)
	}
}

func touchPod(t *testing.T, st *store.Store, name string) {
	t.Helper()
	for range 10 {
		p := &corev1.Pod{}
		if err := st.Get(t.Context(), "default", name, p); errors.Is(err, store.ErrNotFound) {
			return // made later, and looked at then
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations["test.keelson.dev/touched"] = fmt.Sprint(len(p.Annotations["test.keelson.dev/touched"]) + 1)
		if err := st.Update(t.Context(), p); err == nil {
			return
		}
	}
	t.Fatalf("touch pod %s: kept conflicting", name)
}

// podLog records, in order, what happens to the pods of a namespace:
// "+web-0" created, "ready web-0", "-web-0" marked for deletion, "x web-0"
// gone; with the image of the created pod: "+web-0 app:2".
type podLog struct {
	mu     sync.Mutex
	events []string
}

func watchPods(t *testing.T, st *store.Store) *podLog {
	t.Helper()
	l := &podLog{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := st.Watch(ctx, store.MustResource("pods"), store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready, marked := map[types.UID]bool{}, map[types.UID]bool{}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			var add []string
			switch ev.Type {
			case watch.Added:
				add = append(add, "+"+p.Name+" "+p.Spec.Containers[0].Image)
			case watch.Deleted:
				add = append(add, "x "+p.Name)
			}
			if ev.Type != watch.Deleted && podReady(p) && !ready[p.UID] {
				ready[p.UID] = true
				add = append(add, "ready "+p.Name)
			}
			if ev.Type != watch.Deleted && p.DeletionTimestamp != nil && !marked[p.UID] {
				marked[p.UID] = true
				add = append(add, "-"+p.Name)
			}
			l.mu.Lock()
			l.events = append(l.events, add...)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *podLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// only keeps the events that start with one of prefixes.
func only(events []string, prefixes ...string) []string {
	var out []string
	for _, e := range events {
		for _, p := range prefixes {
			if strings.HasPrefix(e, p) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func newStatefulSet(name string, replicas int32, mutate func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template:    podTemplate(name, "app:1"),
		},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

// statefulEnv runs the controllers and one fake node per name, whose pods
// become Ready as gate says.
func statefulEnv(t *testing.T, gate *readyGate, nodes ...string) *testEnv {
	st := etcdtest.NewStore(t)
	env := &testEnv{t: t, st: st}
	for _, n := range nodes {
		node := simNode(n, nil)
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if err := st.Create(t.Context(), node); err != nil {
			t.Fatal(err)
		}
		startFakeNode(t, st, fakenode.Options{Node: n, Ready: gate.ready, Terminate: true})
	}
	startControllers(t, st, testOptions())
	return env
}

func (e *testEnv) statefulSet(name string) *appsv1.StatefulSet {
	return getDefault(e, name, &appsv1.StatefulSet{})
}

// setPods describes the set's pods by name, revision number and image:
// "web-0@1=app:1 web-1@2=app:2", terminating ones with a trailing "!".
func (e *testEnv) setPods(s *appsv1.StatefulSet) string {
	revs := map[string]int64{}
	l, err := e.st.List(e.t.Context(), store.MustResource("controllerrevisions.apps"), store.ListOptions{Namespace: "default"})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, o := range l.Items {
		r := o.(*appsv1.ControllerRevision)
		revs[r.Name] = r.Revision
	}
	var out []string
	for _, p := range ownedBy(listPods(e.t, e.st, "default", labels.Everything()), string(s.UID)) {
		d := fmt.Sprintf("%s@%d=%s", p.Name, revs[p.Labels[appsv1.StatefulSetRevisionLabel]], p.Spec.Containers[0].Image)
		if p.DeletionTimestamp != nil {
			d += "!"
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func stsStatus(s appsv1.StatefulSetStatus) string {
	return fmt.Sprintf("replicas=%d ready=%d available=%d current=%d updated=%d currentRevision=%s updateRevision=%s",
		s.Replicas, s.ReadyReplicas, s.AvailableReplicas, s.CurrentReplicas, s.UpdatedReplicas, s.CurrentRevision, s.UpdateRevision)
}

// waitSet waits until the set's pods are as want says and its status has
// caught up with them, all ready.
func (e *testEnv) waitSet(name, want string) *appsv1.StatefulSet {
	e.t.Helper()
	var s *appsv1.StatefulSet
	eventually(e.t, name+" pods "+want, func() (bool, string) {
		s = e.statefulSet(name)
		got := e.setPods(s)
		n := int32(len(strings.Fields(want)))
		st := s.Status
		return got == want && st.ObservedGeneration == s.Generation && st.Replicas == n && st.ReadyReplicas == n &&
			st.AvailableReplicas == n && st.UpdatedReplicas == n, got + " " + stsStatus(st)
	})
	return s
}

func (e *testEnv) updateSet(name string, mutate func(*appsv1.StatefulSet)) {
	e.t.Helper()
	for range 10 {
		s := e.statefulSet(name)
		mutate(s)
		s.Generation++
		if err := e.st.Update(e.t.Context(), s); err == nil {
			return
		}
	}
	e.t.Fatalf("update statefulset %s: kept conflicting", name)
}

// OrderedReady: each ordinal is made once the one before is Running and
// Ready, with its name, hostname and subdomain; scale-down removes the
// highest ordinal first and waits for it to be gone; scale-up makes the
// same names again.
func TestStatefulSetOrderedReady(t *testing.T) {
	gate := &readyGate{}
	env := statefulEnv(t, gate, "node-a")
	log := watchPods(t, env.st)
	if err := env.st.Create(t.Context(), newStatefulSet("web", 3, nil)); err != nil {
		t.Fatal(err)
	}
	// web-0 runs but is not Ready: web-1 must wait. The status shows web-0
	// Running, so the controller has looked at it since.
	eventually(t, "web-0 running, not ready", func() (bool, string) {
		s := env.statefulSet("web")
		return s.Status.Replicas == 1 && env.setPods(s) == "web-0@1=app:1" && getPod(t, env.st, "web-0").Status.Phase == corev1.PodRunning,
			env.setPods(s) + " " + stsStatus(s.Status)
	})
	gate.let(t, env.st, "web-0")
	eventually(t, "web-1 made after web-0 is ready", func() (bool, string) {
		s := env.statefulSet("web")
		return env.setPods(s) == "web-0@1=app:1 web-1@1=app:1" && s.Status.ReadyReplicas == 1, env.setPods(s) + " " + stsStatus(s.Status)
	})
	gate.let(t, env.st, "web-1", "web-2")
	s := env.waitSet("web", "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1")
	if got, want := only(log.snapshot(), "+", "ready"), []string{"+web-0 app:1", "ready web-0", "+web-1 app:1", "ready web-1", "+web-2 app:1", "ready web-2"}; !slices.Equal(got, want) {
		t.Fatalf("order of creation:\n got %v\nwant %v", got, want)
	}
	if s.Status.CurrentRevision == "" || s.Status.CurrentRevision != s.Status.UpdateRevision || s.Status.CurrentReplicas != 3 {
		t.Errorf("status after the first rollout: %s", stsStatus(s.Status))
	}
	p := getPod(t, env.st, "web-1")
	if p.Spec.Hostname != "web-1" || p.Spec.Subdomain != "web" {
		t.Errorf("web-1: hostname %q subdomain %q, want web-1 and web", p.Spec.Hostname, p.Spec.Subdomain)
	}
	for k, v := range map[string]string{"app": "web", appsv1.StatefulSetPodNameLabel: "web-1", appsv1.PodIndexLabel: "1", appsv1.StatefulSetRevisionLabel: s.Status.UpdateRevision} {
		if p.Labels[k] != v {
			t.Errorf("web-1 label %s=%q, want %q", k, p.Labels[k], v)
		}
	}

	// Scale down to 1: web-2 goes, and only once it is gone web-1.
	mark := len(log.snapshot())
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(1)) })
	env.waitSet("web", "web-0@1=app:1")
	if got, want := only(log.snapshot()[mark:], "-", "x"), []string{"-web-2", "x web-2", "-web-1", "x web-1"}; !slices.Equal(got, want) {
		t.Fatalf("order of removal:\n got %v\nwant %v", got, want)
	}
	// Scale up again: the same names, in order.
	mark = len(log.snapshot())
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(3)) })
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1")
	if got, want := only(log.snapshot()[mark:], "+", "ready"), []string{"+web-1 app:1", "ready web-1", "+web-2 app:1", "ready web-2"}; !slices.Equal(got, want) {
		t.Fatalf("order of scale-up:\n got %v\nwant %v", got, want)
	}
}

// Parallel: every ordinal is made at once, Ready or not, and a scale-down
// removes every condemned pod at once.
func TestStatefulSetParallel(t *testing.T) {
	gate := &readyGate{}
	env := statefulEnv(t, gate, "node-a")
	set := newStatefulSet("web", 3, func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement })
	if err := env.st.Create(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three pods, none ready", func() (bool, string) {
		s := env.statefulSet("web")
		return env.setPods(s) == "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1" && s.Status.Replicas == 3 && s.Status.ReadyReplicas == 0,
			env.setPods(s) + " " + stsStatus(s.Status)
	})
	gate.let(t, env.st, "web-0", "web-1", "web-2")
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1")
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(0)) })
	env.waitSet("web", "")
}

// A rolling update replaces pods from the highest ordinal down, each made
// at the new revision and Ready before the next goes; a partition holds
// the ordinals below it; a template set back to an older one renumbers
// that revision rather than make another.
func TestStatefulSetRollingUpdate(t *testing.T) {
	gate := &readyGate{openAll: true}
	env := statefulEnv(t, gate, "node-a")
	log := watchPods(t, env.st)
	if err := env.st.Create(t.Context(), newStatefulSet("web", 3, nil)); err != nil {
		t.Fatal(err)
	}
	first := env.waitSet("web", "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1").Status.UpdateRevision

	mark := len(log.snapshot())
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "app:2" })
	s := env.waitSet("web", "web-0@2=app:2 web-1@2=app:2 web-2@2=app:2")
	want := []string{"-web-2", "x web-2", "+web-2 app:2", "ready web-2", "-web-1", "x web-1", "+web-1 app:2", "ready web-1",
		"-web-0", "x web-0", "+web-0 app:2", "ready web-0"}
	if got := log.snapshot()[mark:]; !slices.Equal(got, want) {
		t.Fatalf("rolling update:\n got %v\nwant %v", got, want)
	}
	if s.Status.CurrentRevision != s.Status.UpdateRevision || s.Status.UpdateRevision == first || s.Status.CurrentReplicas != 3 {
		t.Errorf("status after the update: %s", stsStatus(s.Status))
	}

	// Partition 2: only web-2 takes app:3; the rollout is not complete, so
	// the current revision stays.
	env.updateSet("web", func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.Containers[0].Image = "app:3"
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(int32(2))}
	})
	eventually(t, "web-2 alone at app:3", func() (bool, string) {
		s := env.statefulSet("web")
		st := s.Status
		return env.setPods(s) == "web-0@2=app:2 web-1@2=app:2 web-2@3=app:3" && st.ObservedGeneration == s.Generation &&
			st.UpdatedReplicas == 1 && st.CurrentReplicas == 2 && st.ReadyReplicas == 3 && st.CurrentRevision != st.UpdateRevision, env.setPods(s) + " " + stsStatus(st)
	})
	// A pod below the partition that is deleted comes back at the current
	// revision, not the update one.
	if err := markDeleted(t.Context(), env.st, store.MustResource("pods"), getPod(t, env.st, "web-0"), ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-0 back at app:2", func() (bool, string) {
		s := env.statefulSet("web")
		p, err := getPodMaybe(env.st, "web-0")
		return err == nil && p.DeletionTimestamp == nil && podReady(p) && env.setPods(s) == "web-0@2=app:2 web-1@2=app:2 web-2@3=app:3", env.setPods(s)
	})

	// Back to app:1 with no partition: the first revision is renumbered 4
	// and reused.
	env.updateSet("web", func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.Containers[0].Image = "app:1"
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(int32(0))}
	})
	s = env.waitSet("web", "web-0@4=app:1 web-1@4=app:1 web-2@4=app:1")
	if s.Status.UpdateRevision != first || s.Status.CurrentRevision != first {
		t.Errorf("rollback: revisions %s, want the first, %s", stsStatus(s.Status), first)
	}
}

func getPodMaybe(st *store.Store, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	return p, st.Get(context.Background(), "default", name, p)
}

// maxUnavailable: a rolling update takes down that many pods at a time
// (counting pods not available already) and no more until they are back.
func TestStatefulSetMaxUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name           string
		maxUnavailable *intstr.IntOrString
		want           string
	}{
		{"default one", nil, "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1 web-3@2=app:2"},
		{"two", ptr.To(intstr.FromInt32(2)), "web-0@1=app:1 web-1@1=app:1 web-2@2=app:2 web-3@2=app:2"},
		{"half", ptr.To(intstr.FromString("50%")), "web-0@1=app:1 web-1@1=app:1 web-2@2=app:2 web-3@2=app:2"},
		{"a percentage rounds down", ptr.To(intstr.FromString("30%")), "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1 web-3@2=app:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := &readyGate{}
			env := statefulEnv(t, gate, "node-a")
			set := newStatefulSet("web", 4, func(s *appsv1.StatefulSet) {
				s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
				s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: tc.maxUnavailable}
			})
			if err := env.st.Create(t.Context(), set); err != nil {
				t.Fatal(err)
			}
			eventually(t, "four pods", func() (bool, string) {
				s := env.statefulSet("web")
				return s.Status.Replicas == 4, env.setPods(s)
			})
			gate.let(t, env.st, "web-0", "web-1", "web-2", "web-3")
			env.waitSet("web", "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1 web-3@1=app:1")
			gate.mu.Lock()
			gate.open = nil // new pods stay unready: the update stops at its budget
			gate.mu.Unlock()
			env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "app:2" })
			eventually(t, "the budget's worth of pods replaced", func() (bool, string) {
				s := env.statefulSet("web")
				n := int32(strings.Count(tc.want, "app:2"))
				return env.setPods(s) == tc.want && s.Status.UpdatedReplicas == n && s.Status.Replicas == 4 &&
					allRunning(listPods(t, env.st, "default", labels.Everything())), env.setPods(s) + " " + stsStatus(s.Status)
			})
			// The controller has seen the new pods Running and unready (the
			// status counts them) and deleted no more.
			s := env.statefulSet("web")
			if s.Status.ReadyReplicas != 4-s.Status.UpdatedReplicas {
				t.Errorf("status %s", stsStatus(s.Status))
			}
			if got := env.setPods(s); got != tc.want {
				t.Errorf("pods %s, want %s", got, tc.want)
			}
		})
	}
}

func allRunning(pods []*corev1.Pod) bool {
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			return false
		}
	}
	return true
}

// OnDelete: a new template replaces nothing until a pod is deleted; that
// ordinal comes back at the new revision.
func TestStatefulSetOnDelete(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	set := newStatefulSet("web", 2, func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	})
	if err := env.st.Create(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1")
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "app:2" })
	eventually(t, "update revision known", func() (bool, string) {
		s := env.statefulSet("web")
		return s.Status.ObservedGeneration == s.Generation && s.Status.UpdatedReplicas == 0 && s.Status.CurrentRevision != s.Status.UpdateRevision, stsStatus(s.Status)
	})
	if got := env.setPods(env.statefulSet("web")); got != "web-0@1=app:1 web-1@1=app:1" {
		t.Fatalf("OnDelete replaced pods: %s", got)
	}
	if err := markDeleted(t.Context(), env.st, store.MustResource("pods"), getPod(t, env.st, "web-0"), ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-0 at app:2", func() (bool, string) {
		s := env.statefulSet("web")
		return env.setPods(s) == "web-0@2=app:2 web-1@1=app:1" && s.Status.UpdatedReplicas == 1 && s.Status.ReadyReplicas == 2, env.setPods(s) + " " + stsStatus(s.Status)
	})
}

// A pod that fails is replaced under the same name.
func TestStatefulSetReplacesFailedPod(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	if err := env.st.Create(t.Context(), newStatefulSet("web", 2, nil)); err != nil {
		t.Fatal(err)
	}
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1")
	old := getPod(t, env.st, "web-1")
	cp := old.DeepCopy()
	cp.Status.Phase = corev1.PodFailed
	if err := env.st.UpdateStatus(t.Context(), cp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-1 replaced", func() (bool, string) {
		p, err := getPodMaybe(env.st, "web-1")
		return err == nil && p.UID != old.UID && podReady(p), fmt.Sprint(err)
	})
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1")
}

// An ordinal whose node is lost keeps its pod, marked for deletion, for as
// long as the node may still run it: no second pod of that name starts
// elsewhere. Once the node is deleted, the ordinal runs on another node.
func TestStatefulSetLostNode(t *testing.T) {
	st := etcdtest.NewStore(t)
	env := &testEnv{t: t, st: st}
	createObj(t, st, testNode("node-a"))
	stopA := heartbeat(t, st, "node-a")
	defer stopA()
	ctxA, lostA := context.WithCancel(context.Background())
	defer lostA()
	if err := fakenode.Start(ctxA, st, fakenode.Options{Node: "node-a", Log: testLog(), Terminate: true}); err != nil {
		t.Fatal(err)
	}
	opts := schedTestOptions()
	opts.NodeLifecycle = NodeLifecycleOptions{GracePeriod: time.Second, TolerationSeconds: 1}
	startControllers(t, st, opts)
	if err := st.Create(t.Context(), newStatefulSet("db", 1, nil)); err != nil {
		t.Fatal(err)
	}
	env.waitSet("db", "db-0@1=app:1")
	first := getPod(t, st, "db-0")
	// node-a goes silent and node-b joins: db-0 is marked for deletion,
	// and stays.
	lostA()
	stopA()
	createObj(t, st, testNode("node-b"))
	stopB := heartbeat(t, st, "node-b")
	defer stopB()
	startFakeNode(t, st, fakenode.Options{Node: "node-b", Terminate: true})
	eventually(t, "db-0 marked for deletion", func() (bool, string) {
		p := getPod(t, st, "db-0")
		return p.DeletionTimestamp != nil, fmt.Sprint(p.DeletionTimestamp)
	})
	eventually(t, "the set has seen it", func() (bool, string) {
		s := env.statefulSet("db")
		return s.Status.CurrentReplicas == 0 && s.Status.UpdatedReplicas == 0 && s.Status.Replicas == 1, stsStatus(s.Status)
	})
	if p := getPod(t, st, "db-0"); p.UID != first.UID || p.Spec.NodeName != "node-a" {
		t.Fatalf("db-0 replaced while its node may still run it: %s on %s", p.UID, p.Spec.NodeName)
	}
	// The node is deleted: its pods go with it, and db-0 runs on node-b.
	if err := st.Delete(t.Context(), store.MustResource("nodes"), "", "node-a", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "db-0 on node-b", func() (bool, string) {
		p, err := getPodMaybe(st, "db-0")
		return err == nil && p.UID != first.UID && p.Spec.NodeName == "node-b" && podReady(p), fmt.Sprint(err, " ", p.Spec.NodeName)
	})
}

// Claims: one per template and ordinal, labelled by the selector, mounted
// by the pod under the template's name; kept when the pod goes and when
// the set scales down (Retain), or deleted with the pod of a removed
// ordinal (whenScaled: Delete) or with the set (whenDeleted: Delete).
func TestStatefulSetClaims(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	claims := func() string {
		l, err := env.st.List(t.Context(), store.MustResource("persistentvolumeclaims"), store.ListOptions{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range l.Items {
			c := o.(*corev1.PersistentVolumeClaim)
			var owners []string
			for _, r := range c.OwnerReferences {
				owners = append(owners, r.Kind+"/"+r.Name)
			}
			out = append(out, c.Name+fmt.Sprint(owners))
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	vct := corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{"tier": "db"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	keep := newStatefulSet("keep", 2, func(s *appsv1.StatefulSet) { s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{vct} })
	drop := newStatefulSet("drop", 2, func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{vct}
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		}
	})
	for _, s := range []*appsv1.StatefulSet{keep, drop} {
		if err := env.st.Create(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	env.waitSet("keep", "keep-0@1=app:1 keep-1@1=app:1")
	env.waitSet("drop", "drop-0@1=app:1 drop-1@1=app:1")
	want := "data-drop-0[StatefulSet/drop] data-drop-1[StatefulSet/drop] data-keep-0[] data-keep-1[]"
	eventually(t, "claims", func() (bool, string) { return claims() == want, claims() })
	c := &corev1.PersistentVolumeClaim{}
	if err := env.st.Get(t.Context(), "default", "data-keep-1", c); err != nil {
		t.Fatal(err)
	}
	if c.Labels["tier"] != "db" || c.Labels["app"] != "keep" || c.Spec.Resources.Requests.Storage().String() != "1Gi" {
		t.Errorf("claim data-keep-1: labels %v, request %v", c.Labels, c.Spec.Resources.Requests)
	}
	p := getPod(t, env.st, "keep-1")
	if i := slices.IndexFunc(p.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "data" }); i < 0 ||
		p.Spec.Volumes[i].PersistentVolumeClaim == nil || p.Spec.Volumes[i].PersistentVolumeClaim.ClaimName != "data-keep-1" {
		t.Errorf("keep-1 volumes: %+v", p.Spec.Volumes)
	}

	// Scale both to 1: keep's claim stays, drop's goes with its pod.
	for _, n := range []string{"keep", "drop"} {
		env.updateSet(n, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(1)) })
	}
	env.waitSet("keep", "keep-0@1=app:1")
	env.waitSet("drop", "drop-0@1=app:1")
	want = "data-drop-0[StatefulSet/drop] data-keep-0[] data-keep-1[]"
	eventually(t, "claims after scale-down", func() (bool, string) { return claims() == want, claims() })

	// Back to 2: keep-1 gets its old claim again, drop-1 a new one.
	for _, n := range []string{"keep", "drop"} {
		env.updateSet(n, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(int32(2)) })
	}
	old := c.UID
	env.waitSet("keep", "keep-0@1=app:1 keep-1@1=app:1")
	env.waitSet("drop", "drop-0@1=app:1 drop-1@1=app:1")
	if err := env.st.Get(t.Context(), "default", "data-keep-1", c); err != nil || c.UID != old {
		t.Errorf("data-keep-1 is not the claim it had: %v", err)
	}

	// Delete both sets: drop's claims go with it, keep's stay.
	for _, n := range []string{"keep", "drop"} {
		if err := Delete(t.Context(), env.st, env.statefulSet(n), metav1.DeletePropagationBackground); err != nil {
			t.Fatal(err)
		}
	}
	want = "data-keep-0[] data-keep-1[]"
	eventually(t, "claims after the sets are deleted", func() (bool, string) { return claims() == want, claims() })
}

// A pod of an ordinal's name without a controller, matching the selector
// (left by a set deleted with its pods orphaned), is adopted; one that
// belongs to another controller blocks its ordinal, and the set's events
// say whose it is.
func TestStatefulSetAdoptsOrphans(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	set := newStatefulSet("web", 2, nil)
	// The orphan carries the revision the set will have, so that it is
	// kept as it is, not rolled.
	data, err := revisionData(&set.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := revisionName(set, data)
	// Another controller's pod: its owner exists, so the collector keeps it.
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "intruder"}}
	if err := env.st.Create(t.Context(), owner); err != nil {
		t.Fatal(err)
	}
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0",
		Labels: map[string]string{"app": "web", appsv1.StatefulSetRevisionLabel: rev}}, Spec: podTemplate("web", "app:1").Spec}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{"app": "web"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "intruder", UID: owner.UID, Controller: ptr.To(true)}}},
		Spec: podTemplate("web", "app:1").Spec}
	for _, p := range []*corev1.Pod{orphan, other} {
		if err := env.st.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.st.Create(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	set = env.statefulSet("web")
	eventually(t, "web-0 adopted", func() (bool, string) {
		p := getPod(t, env.st, "web-0")
		ref := metav1.GetControllerOf(p)
		return ref != nil && ref.UID == set.UID && p.UID == orphan.UID && podReady(p), fmt.Sprint(p.OwnerReferences)
	})
	eventually(t, "an event saying whose web-1 is", func() (bool, string) {
		l, err := env.st.List(t.Context(), store.MustResource("events"), store.ListOptions{Namespace: "default"})
		if err != nil {
			return false, err.Error()
		}
		var msgs []string
		for _, o := range l.Items {
			ev := o.(*corev1.Event)
			if ev.InvolvedObject.Name == "web" && ev.Reason == "FailedCreate" && strings.Contains(ev.Message, "pod web-1 exists and belongs to ConfigMap intruder") {
				return true, ""
			}
			msgs = append(msgs, ev.Message)
		}
		return false, fmt.Sprint(msgs)
	})
	if p := getPod(t, env.st, "web-1"); metav1.GetControllerOf(p).Name != "intruder" {
		t.Errorf("web-1 taken from its owner: %v", p.OwnerReferences)
	}
}

// minReadySeconds: under OrderedReady the next ordinal waits until the one
// before has been ready that long, and the status counts it available only
// then.
func TestStatefulSetMinReadySeconds(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	if err := env.st.Create(t.Context(), newStatefulSet("web", 2, func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = 2 })); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-0 ready, not yet available", func() (bool, string) {
		s := env.statefulSet("web")
		return s.Status.ReadyReplicas == 1 && s.Status.AvailableReplicas == 0, stsStatus(s.Status)
	})
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1")
	ready := podReadyCondition(getPod(t, env.st, "web-0")).LastTransitionTime
	made := getPod(t, env.st, "web-1").CreationTimestamp
	if d := made.Sub(ready.Time); d < 2*time.Second {
		t.Errorf("web-1 made %v after web-0 became ready, want at least minReadySeconds (2s)", d)
	}
}

// A rollout to a template whose pods never become ready stops at the first
// of them, as in Kubernetes; a commit that fixes the template replaces
// that pod at once (Kubernetes waits on it for ever and asks for it to be
// deleted by hand) and the rollout goes on.
func TestStatefulSetRolloutPastBrokenTemplate(t *testing.T) {
	gate := &readyGate{openAll: true}
	env := statefulEnv(t, gate, "node-a")
	if err := env.st.Create(t.Context(), newStatefulSet("web", 3, nil)); err != nil {
		t.Fatal(err)
	}
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1")
	gate.mu.Lock()
	gate.openAll = false
	gate.open = map[string]bool{"web-0": true, "web-1": true} // web-2 of the broken template never becomes ready
	gate.mu.Unlock()
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "broken" })
	eventually(t, "the rollout stopped at web-2", func() (bool, string) {
		s := env.statefulSet("web")
		return env.setPods(s) == "web-0@1=app:1 web-1@1=app:1 web-2@2=broken" && s.Status.UpdatedReplicas == 1 && s.Status.ReadyReplicas == 2 &&
			getPod(t, env.st, "web-2").Status.Phase == corev1.PodRunning, env.setPods(s) + " " + stsStatus(s.Status)
	})
	gate.mu.Lock()
	gate.openAll = true
	gate.mu.Unlock()
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "app:3" })
	env.waitSet("web", "web-0@3=app:3 web-1@3=app:3 web-2@3=app:3")
}

// A Ready pod still inside minReadySeconds is not available, but it is not
// broken either: a rollout does not replace it out of turn. Here all three
// are inside it, so the budget of one unavailable pod is spent and the
// rollout waits; none is deleted.
func TestStatefulSetRolloutKeepsReadyPods(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	set := newStatefulSet("web", 3, func(s *appsv1.StatefulSet) {
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		s.Spec.MinReadySeconds = 600
	})
	if err := env.st.Create(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three pods ready", func() (bool, string) {
		s := env.statefulSet("web")
		return s.Status.ReadyReplicas == 3 && s.Status.UpdatedReplicas == 3, stsStatus(s.Status)
	})
	first := env.statefulSet("web").Status.UpdateRevision
	env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "app:2" })
	eventually(t, "the new revision seen", func() (bool, string) {
		s := env.statefulSet("web")
		return s.Status.ObservedGeneration == s.Generation && s.Status.UpdateRevision != first, stsStatus(s.Status)
	})
	if got := env.setPods(env.statefulSet("web")); got != "web-0@1=app:1 web-1@1=app:1 web-2@1=app:1" {
		t.Errorf("pods %s: ready pods replaced out of turn", got)
	}
}

// A set deleted with its pods orphaned and created again takes its pods
// and its revision back as they are: none is restarted.
func TestStatefulSetRecreatedAfterOrphanDelete(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	if err := env.st.Create(t.Context(), newStatefulSet("web", 2, nil)); err != nil {
		t.Fatal(err)
	}
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1")
	before := map[string]types.UID{}
	for _, p := range listPods(t, env.st, "default", labels.Everything()) {
		before[p.Name] = p.UID
	}
	if err := Delete(t.Context(), env.st, env.statefulSet("web"), metav1.DeletePropagationOrphan); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the set gone, its pods orphaned", func() (bool, string) {
		_, err := getPodMaybe(env.st, "web-0")
		s := &appsv1.StatefulSet{}
		gone := errors.Is(env.st.Get(t.Context(), "default", "web", s), store.ErrNotFound)
		for _, p := range listPods(t, env.st, "default", labels.Everything()) {
			if len(p.OwnerReferences) > 0 {
				return false, p.Name + " still owned"
			}
		}
		return gone && err == nil, fmt.Sprint(gone, err)
	})
	if err := env.st.Create(t.Context(), newStatefulSet("web", 2, nil)); err != nil {
		t.Fatal(err)
	}
	env.waitSet("web", "web-0@1=app:1 web-1@1=app:1")
	for _, p := range listPods(t, env.st, "default", labels.Everything()) {
		if before[p.Name] != p.UID {
			t.Errorf("%s restarted: uid %s, was %s", p.Name, p.UID, before[p.Name])
		}
	}
	if s := env.statefulSet("web"); s.Status.CollisionCount != nil {
		t.Errorf("collision count %d: the orphaned revision was taken for a collision", *s.Status.CollisionCount)
	}
}

// A negative revisionHistoryLimit keeps every revision.
func TestStatefulSetNegativeHistoryLimit(t *testing.T) {
	env := statefulEnv(t, &readyGate{openAll: true}, "node-a")
	if err := env.st.Create(t.Context(), newStatefulSet("web", 1, func(s *appsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = ptr.To(int32(-1)) })); err != nil {
		t.Fatal(err)
	}
	env.waitSet("web", "web-0@1=app:1")
	for _, img := range []string{"app:2", "app:3"} {
		env.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = img })
	}
	env.waitSet("web", "web-0@3=app:3")
	l, err := env.st.List(t.Context(), store.MustResource("controllerrevisions.apps"), store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 3 {
		t.Errorf("%d revisions, want all 3", len(l.Items))
	}
}

// While claims are not bound, a set with claim templates makes its first
// ordinal's claim and pod, the pod waits Pending saying why, the next
// ordinal is not made, and the set's health says the claims are the cause.
func TestStatefulSetWaitsOnUnboundClaims(t *testing.T) {
	st := etcdtest.NewStore(t)
	env := &testEnv{t: t, st: st}
	createObj(t, st, testNode("node-a"))
	stop := heartbeat(t, st, "node-a")
	defer stop()
	startControllers(t, st, schedTestOptions())
	set := newStatefulSet("db", 2, func(s *appsv1.StatefulSet) {
		// No class: only a volume that exists binds it, and none does.
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("")}}}
	})
	if err := st.Create(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	eventually(t, "db-0 Pending on its claim", func() (bool, string) {
		p, err := getPodMaybe(st, "db-0")
		if err != nil {
			return false, err.Error()
		}
		c := podScheduled(p)
		return p.Spec.NodeName == "" && c != nil && c.Status == corev1.ConditionFalse &&
			strings.HasPrefix(c.Message, "pod has unbound immediate PersistentVolumeClaims: data-db-0"), fmt.Sprintf("%+v", c)
	})
	eventually(t, "the set Progressing", func() (bool, string) {
		h := HealthOf(env.statefulSet("db"))
		return h.Status == Progressing && h.Message == "Waiting for 2 pods to be ready...", fmt.Sprintf("%+v", h)
	})
	c := &corev1.PersistentVolumeClaim{}
	if err := st.Get(t.Context(), "default", "data-db-0", c); err != nil {
		t.Errorf("claim data-db-0: %v", err)
	}
	if _, err := getPodMaybe(st, "db-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("db-1 made while db-0 waits: %v", err)
	}
}
