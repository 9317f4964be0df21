package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func testPV(name, size string, mutate ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/" + name}},
		},
	}
	for _, m := range mutate {
		m(pv)
	}
	return pv
}

func testPVC(name, size string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(""),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	for _, m := range mutate {
		m(pvc)
	}
	return pvc
}

func affinityTo(node string) func(*corev1.PersistentVolume) {
	return func(pv *corev1.PersistentVolume) {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}}}
	}
}

// Which volume a claim gets, as Kubernetes' binder decides: the smallest
// that fits on every count, one set aside for the claim first, none that
// holds another claim or is on its way out.
func TestFindVolume(t *testing.T) {
	rwx := func(pv *corev1.PersistentVolume) {
		pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany}
	}
	class := func(c string) func(*corev1.PersistentVolume) {
		return func(pv *corev1.PersistentVolume) { pv.Spec.StorageClassName = c }
	}
	labelled := func(pv *corev1.PersistentVolume) { pv.Labels = map[string]string{"tier": "db"} }
	block := func(pv *corev1.PersistentVolume) { pv.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock) }
	taken := func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "other", UID: "other-uid"}
	}
	forData := func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data"}
	}
	released := func(pv *corev1.PersistentVolume) { pv.Status.Phase = corev1.VolumeReleased }
	nodeA, nodeB := testNode("node-a"), testNode("node-b")
	for _, tc := range []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		class string
		node  *corev1.Node
		pvs   []*corev1.PersistentVolume
		want  string
	}{
		{"smallest that fits", testPVC("data", "3Gi"), "", nil,
			[]*corev1.PersistentVolume{testPV("big", "10Gi"), testPV("small", "1Gi"), testPV("mid", "5Gi"), testPV("mid2", "5Gi")}, "mid"},
		{"exactly the size", testPVC("data", "5Gi"), "", nil, []*corev1.PersistentVolume{testPV("mid", "5Gi")}, "mid"},
		{"none big enough", testPVC("data", "20Gi"), "", nil, []*corev1.PersistentVolume{testPV("big", "10Gi")}, ""},
		{"access modes", testPVC("data", "1Gi", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}), "", nil, []*corev1.PersistentVolume{testPV("rwo", "1Gi"), testPV("rwx", "2Gi", rwx)}, "rwx"},
		{"class", testPVC("data", "1Gi"), "fast", nil, []*corev1.PersistentVolume{testPV("plain", "1Gi"), testPV("fast", "2Gi", class("fast"))}, "fast"},
		{"no class asks for volumes without one", testPVC("data", "1Gi"), "", nil, []*corev1.PersistentVolume{testPV("fast", "1Gi", class("fast"))}, ""},
		{"volume mode", testPVC("data", "1Gi"), "", nil, []*corev1.PersistentVolume{testPV("block", "1Gi", block), testPV("fs", "2Gi")}, "fs"},
		{"selector", testPVC("data", "1Gi", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
		}), "", nil, []*corev1.PersistentVolume{testPV("any", "1Gi"), testPV("db", "2Gi", labelled)}, "db"},
		{"volumeName", testPVC("data", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "big" }), "", nil,
			[]*corev1.PersistentVolume{testPV("small", "1Gi"), testPV("big", "10Gi")}, "big"},
		{"volumeName too small", testPVC("data", "5Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "small" }), "", nil,
			[]*corev1.PersistentVolume{testPV("small", "1Gi"), testPV("big", "10Gi")}, ""},
		{"held by another claim", testPVC("data", "1Gi"), "", nil, []*corev1.PersistentVolume{testPV("taken", "1Gi", taken), testPV("free", "2Gi")}, "free"},
		{"set aside for this claim first", testPVC("data", "1Gi"), "", nil,
			[]*corev1.PersistentVolume{testPV("small", "1Gi"), testPV("kept", "10Gi", forData)}, "kept"},
		{"released is not reused", testPVC("data", "1Gi"), "", nil, []*corev1.PersistentVolume{testPV("old", "1Gi", released)}, ""},
		{"reachable from the chosen node", testPVC("data", "1Gi"), "", nodeB,
			[]*corev1.PersistentVolume{testPV("on-a", "1Gi", affinityTo("node-a")), testPV("on-b", "2Gi", affinityTo("node-b"))}, "on-b"},
		{"no node chosen, any node", testPVC("data", "1Gi"), "", nil,
			[]*corev1.PersistentVolume{testPV("on-a", "1Gi", affinityTo("node-a")), testPV("on-b", "2Gi", affinityTo("node-b"))}, "on-a"},
		{"nothing on the chosen node", testPVC("data", "1Gi"), "", nodeA, []*corev1.PersistentVolume{testPV("on-b", "2Gi", affinityTo("node-b"))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if pv := findVolume(tc.claim, tc.class, tc.pvs, tc.node); pv != nil {
				got = pv.Name
			}
			if got != tc.want {
				t.Errorf("findVolume = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDefaultClass(t *testing.T) {
	sc := func(name string, def bool, created int64) *storagev1.StorageClass {
		c := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(created, 0)}}
		if def {
			c.Annotations = map[string]string{annDefaultClass: "true"}
		}
		return c
	}
	for _, tc := range []struct {
		classes []*storagev1.StorageClass
		want    string
	}{
		{nil, ""},
		{[]*storagev1.StorageClass{sc("slow", false, 1)}, ""},
		{[]*storagev1.StorageClass{sc("slow", false, 1), sc("fast", true, 2)}, "fast"},
		{[]*storagev1.StorageClass{sc("old", true, 1), sc("new", true, 2)}, "new"},
	} {
		if got := defaultClass(tc.classes); got != tc.want {
			t.Errorf("defaultClass = %q, want %q", got, tc.want)
		}
	}
	none := testPVC("data", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = nil })
	if got := claimClass(none, []*storagev1.StorageClass{sc("fast", true, 1)}); got != "fast" {
		t.Errorf("a claim without a class gets %q, want the default", got)
	}
	if got := claimClass(testPVC("data", "1Gi"), []*storagev1.StorageClass{sc("fast", true, 1)}); got != "" {
		t.Errorf("a claim asking for no class gets %q", got)
	}
}

func getPV(t *testing.T, st *store.Store, name string) *corev1.PersistentVolume {
	t.Helper()
	pv := &corev1.PersistentVolume{}
	if err := st.Get(t.Context(), "", name, pv); err != nil {
		t.Fatal(err)
	}
	return pv
}

func getPVC(t *testing.T, st *store.Store, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	if err := st.Get(t.Context(), "default", name, pvc); err != nil {
		t.Fatal(err)
	}
	return pvc
}

// binding describes both sides: "claim data Bound to mid (5Gi); volume mid
// Bound to default/data".
func binding(t *testing.T, st *store.Store, claim, volume string) string {
	c, v := getPVC(t, st, claim), getPV(t, st, volume)
	ref := "nothing"
	if r := v.Spec.ClaimRef; r != nil {
		ref = r.Namespace + "/" + r.Name
		if r.UID != c.UID {
			ref += " (another uid)"
		}
	}
	capacity := c.Status.Capacity[corev1.ResourceStorage]
	return fmt.Sprintf("claim %s %s to %s (%s); volume %s %s to %s", claim, c.Status.Phase, c.Spec.VolumeName, capacity.String(), volume, v.Status.Phase, ref)
}

// A claim binds to the smallest volume that fits, both sides at once; one
// that fits nothing waits Pending, saying so, until a volume comes; a
// volume whose claim is gone is Released and kept (Retain) or deleted
// (Delete); a claim whose volume is gone is Lost.
func TestPVBinder(t *testing.T) {
	st := etcdtest.NewStore(t)
	for _, pv := range []*corev1.PersistentVolume{testPV("small", "1Gi"), testPV("mid", "5Gi"), testPV("big", "10Gi"),
		testPV("scratch", "5Gi", func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
			pv.Labels = map[string]string{"use": "scratch"}
		})} {
		createObj(t, st, pv)
	}
	startControllers(t, st, testOptions())
	createObj(t, st, testPVC("data", "3Gi"))
	want := "claim data Bound to mid (5Gi); volume mid Bound to default/data"
	eventually(t, want, func() (bool, string) { got := binding(t, st, "data", "mid"); return got == want, got })
	if c := getPVC(t, st, "data"); c.Annotations[annBindCompleted] != "yes" || !slices.Equal(c.Status.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("claim annotations %v, access modes %v", c.Annotations, c.Status.AccessModes)
	}
	eventually(t, "the free volumes Available", func() (bool, string) {
		a, b := getPV(t, st, "small").Status.Phase, getPV(t, st, "big").Status.Phase
		return a == corev1.VolumeAvailable && b == corev1.VolumeAvailable, fmt.Sprint(a, b)
	})

	// Too big for anything: Pending, with an event saying so; a volume
	// that fits comes, and it binds.
	createObj(t, st, testPVC("huge", "50Gi"))
	eventually(t, "huge Pending with a FailedBinding event", func() (bool, string) {
		return getPVC(t, st, "huge").Status.Phase == corev1.ClaimPending && hasEvent(t, st, "huge", "FailedBinding", "no persistent volumes available"), ""
	})
	createObj(t, st, testPV("giant", "100Gi"))
	want = "claim huge Bound to giant (100Gi); volume giant Bound to default/huge"
	eventually(t, want, func() (bool, string) { got := binding(t, st, "huge", "giant"); return got == want, got })

	// Claim gone: Retain keeps the volume Released; Delete deletes it.
	createObj(t, st, testPVC("tmp", "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"use": "scratch"}}
	}))
	want = "claim tmp Bound to scratch (5Gi); volume scratch Bound to default/tmp"
	eventually(t, want, func() (bool, string) { got := binding(t, st, "tmp", "scratch"); return got == want, got })
	for _, name := range []string{"data", "tmp"} {
		if err := st.Delete(t.Context(), store.MustResource("persistentvolumeclaims"), "default", name, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "mid Released, scratch deleted", func() (bool, string) {
		mid := getPV(t, st, "mid")
		err := st.Get(t.Context(), "", "scratch", &corev1.PersistentVolume{})
		return mid.Status.Phase == corev1.VolumeReleased && errors.Is(err, store.ErrNotFound), fmt.Sprint(mid.Status.Phase, " ", err)
	})
	// A new claim does not get the released volume, whose data is the old
	// claim's.
	createObj(t, st, testPVC("again", "3Gi"))
	want = "claim again Bound to big (10Gi); volume big Bound to default/again"
	eventually(t, want, func() (bool, string) { got := binding(t, st, "again", "big"); return got == want, got })

	// Volume gone: the claim is Lost.
	if err := st.Delete(t.Context(), store.MustResource("persistentvolumes"), "", "giant", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "huge Lost", func() (bool, string) {
		c := getPVC(t, st, "huge")
		return c.Status.Phase == corev1.ClaimLost && hasEvent(t, st, "huge", "ClaimLost", "giant"), string(c.Status.Phase)
	})
}

// The default class is given to claims without one; a class that binds on
// first consumer waits for the scheduler's choice of node and then binds a
// volume reachable from it.
func TestPVBinderClasses(t *testing.T) {
	st := etcdtest.NewStore(t)
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	createObj(t, st, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Provisioner: "example.com/none"})
	createObj(t, st, testNode("node-a"))
	createObj(t, st, testNode("node-b"))
	inClass := func(c string) func(*corev1.PersistentVolume) {
		return func(pv *corev1.PersistentVolume) { pv.Spec.StorageClassName = c }
	}
	createObj(t, st, testPV("a-disk", "1Gi", inClass("local"), affinityTo("node-a")))
	createObj(t, st, testPV("b-disk", "2Gi", inClass("local"), affinityTo("node-b")))
	createObj(t, st, testPV("nfs", "1Gi", inClass("shared")))
	startControllers(t, st, testOptions())
	// The control plane makes its local-path class, the default; a default
	// class made later is newer, and wins, as in Kubernetes.
	eventually(t, "the built-in local-path class", func() (bool, string) {
		sc := &storagev1.StorageClass{}
		err := st.Get(t.Context(), "", "local-path", sc)
		return err == nil && sc.Annotations[annDefaultClass] == "true" && *sc.VolumeBindingMode == wffc, fmt.Sprint(err)
	})
	time.Sleep(1100 * time.Millisecond) // creation times have seconds
	createObj(t, st, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local", Annotations: map[string]string{annDefaultClass: "true"}},
		Provisioner: "example.com/none", VolumeBindingMode: &wffc})

	createObj(t, st, testPVC("shared", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("shared") }))
	want := "claim shared Bound to nfs (1Gi); volume nfs Bound to default/shared"
	eventually(t, want, func() (bool, string) { got := binding(t, st, "shared", "nfs"); return got == want, got })

	createObj(t, st, testPVC("local", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = nil }))
	eventually(t, "waiting for a first consumer", func() (bool, string) {
		return getPVC(t, st, "local").Status.Phase == corev1.ClaimPending &&
			hasEvent(t, st, "local", "WaitForFirstConsumer", "waiting for first consumer"), ""
	})
	c := getPVC(t, st, "local")
	c.Annotations = map[string]string{annSelectedNode: "node-b"}
	if err := st.Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	want = "claim local Bound to b-disk (2Gi); volume b-disk Bound to default/local"
	eventually(t, want, func() (bool, string) { got := binding(t, st, "local", "b-disk"); return got == want, got })
}

func hasEvent(t *testing.T, st *store.Store, object, reason, text string) bool {
	t.Helper()
	l, err := st.List(t.Context(), store.MustResource("events"), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range l.Items {
		ev := o.(*corev1.Event)
		if ev.InvolvedObject.Name == object && ev.Reason == reason && strings.Contains(ev.Message, text) {
			return true
		}
	}
	return false
}

// A claim in use is not deleted under its pod: it carries the
// pvc-protection finalizer, and marked for deletion it stays (Terminating)
// until no pod that is not finished uses it.
func TestPVCProtection(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, testOptions())
	startFakeNode(t, st, fakenode.Options{Terminate: true})
	createObj(t, st, testPV("disk", "1Gi"))
	createObj(t, st, testPVC("data", "1Gi"))
	eventually(t, "the claim protected and bound", func() (bool, string) {
		c := getPVC(t, st, "data")
		return slices.Contains(c.Finalizers, pvcProtectionFinalizer) && c.Status.Phase == corev1.ClaimBound, fmt.Sprint(c.Finalizers, c.Status.Phase)
	})
	pod := pendingPod("user", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	})
	createObj(t, st, pod)
	eventually(t, "the pod running", func() (bool, string) {
		p := getPod(t, st, "user")
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	if err := markDeleted(t.Context(), st, store.MustResource("persistentvolumeclaims"), getPVC(t, st, "data"), ""); err != nil {
		t.Fatal(err)
	}
	// A negative: for a while (the controller reacts in milliseconds), the
	// claim stays, Terminating, its finalizer held by the running pod.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c := getPVC(t, st, "data") // fails the test when the claim is gone
		if c.DeletionTimestamp == nil || !slices.Contains(c.Finalizers, pvcProtectionFinalizer) {
			t.Fatalf("claim in use: deletionTimestamp %v, finalizers %v", c.DeletionTimestamp, c.Finalizers)
		}
	}
	if err := markDeleted(t.Context(), st, store.MustResource("pods"), getPod(t, st, "user"), ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the claim gone once its pod is", func() (bool, string) {
		err := st.Get(t.Context(), "default", "data", &corev1.PersistentVolumeClaim{})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
}

// An ephemeral volume's claim, "<pod>-<volume>", is made for its pod and
// goes with it; a claim of that name that is someone else's keeps the pod
// from starting on it.
func TestEphemeralVolumes(t *testing.T) {
	st := etcdtest.NewStore(t)
	createObj(t, st, testNode("node-a"))
	createObj(t, st, testPV("disk", "1Gi"))
	startControllers(t, st, schedTestOptions())
	ephemeral := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
			VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"kind": "scratch"}},
				Spec:       testPVC("x", "1Gi").Spec,
			}}}}}
	}
	createObj(t, st, pendingPod("job", ephemeral))
	p := waitBound(t, st, "job")
	c := getPVC(t, st, "job-scratch")
	if ref := metav1.GetControllerOf(c); ref == nil || ref.UID != p.UID || c.Labels["kind"] != "scratch" || c.Spec.VolumeName != "disk" {
		t.Fatalf("claim job-scratch: owners %v, labels %v, volume %q", c.OwnerReferences, c.Labels, c.Spec.VolumeName)
	}
	if err := st.Delete(t.Context(), store.MustResource("pods"), "default", "job", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the claim gone with its pod", func() (bool, string) {
		err := st.Get(t.Context(), "default", "job-scratch", &corev1.PersistentVolumeClaim{})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})

	createObj(t, st, testPVC("other-scratch", "1Gi"))
	createObj(t, st, pendingPod("other", ephemeral))
	eventually(t, "a pod whose ephemeral claim is not its own waits", func() (bool, string) {
		c := podScheduled(getPod(t, st, "other"))
		return c != nil && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, `persistentvolumeclaim "other-scratch" was not created for pod other`), fmt.Sprintf("%+v", c)
	})
}
