package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/support"
	"github.com/keelson/keelson/store"
)

// TestSyncHealthKindsNotActedOn: a source whose revision holds a
// NetworkPolicy and a StorageClass beside a running Deployment
// is not "every object is healthy": its Sync's health is Unsupported,
// lists both with what keelson does not do, and its Healthy condition is
// False with reason Unsupported. A class then deleted behind Git's back is
// Missing, which outranks Unsupported.
func TestSyncHealthKindsNotActedOn(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	src := map[string]string{keelsonv1alpha1.LabelSource: "shop"}
	d := newDeployment("web", 2, "localhost/web:1")
	d.Labels = src
	policy := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Labels: src}}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast", Labels: src}, Provisioner: "example.com/fast"}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg", Labels: src}}
	for _, o := range []store.Object{d, policy, sc, cm} {
		if err := env.st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	s := &keelsonv1alpha1.Sync{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: keelsonv1alpha1.SyncSpec{URL: "/srv/shop"},
		Status: keelsonv1alpha1.SyncStatus{LastAppliedRevision: "fedcba9876543210", Inventory: []keelsonv1alpha1.ObjectRef{
			{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
			{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Namespace: "default", Name: "web"},
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg"},
			{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass", Name: "fast"},
		}}}
	if err := env.st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	policySays, _ := support.NotActedOn(networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy").GroupKind())
	scSays, _ := support.NotActedOn(storagev1.SchemeGroupVersion.WithKind("StorageClass").GroupKind())
	want := []keelsonv1alpha1.ObjectHealth{
		{ObjectRef: s.Status.Inventory[1], Status: "Unsupported", Message: policySays},
		{ObjectRef: s.Status.Inventory[3], Status: "Unsupported", Message: scSays},
	}
	eventually(t, "the Sync Unsupported, naming the policy and the class, once the deployment runs", func() (bool, string) {
		cur, msg := syncHealthOf(t, env, "shop")
		h := cur.Status.Health
		c := meta.FindStatusCondition(cur.Status.Conditions, keelsonv1alpha1.ConditionHealthy)
		return h != nil && h.Status == "Unsupported" && h.Message == "NetworkPolicy default/web: "+policySays && slices.Equal(h.Objects, want) &&
			c != nil && c.Status == metav1.ConditionFalse && c.Reason == "Unsupported" && c.Message == h.Message, msg
	})

	if err := env.st.Delete(ctx, store.MustResource("storageclasses.storage.k8s.io"), "", "fast", nil); err != nil {
		t.Fatal(err)
	}
	touchSync(t, env, "shop") // classes are not among the kinds whose changes recompute health: gitsync's next write brings the controller back
	eventually(t, "the deleted class Missing, ranked above the policy", func() (bool, string) {
		cur, msg := syncHealthOf(t, env, "shop")
		h := cur.Status.Health
		return h != nil && h.Status == "Missing" && strings.HasPrefix(h.Message, "StorageClass fast: ") && len(h.Objects) == 2 &&
			h.Objects[0].Status == "Unsupported" && h.Objects[1].Status == "Missing", msg
	})
}

func syncHealthOf(t *testing.T, env *testEnv, name string) (*keelsonv1alpha1.Sync, string) {
	t.Helper()
	cur := &keelsonv1alpha1.Sync{}
	if err := env.st.Get(t.Context(), "", name, cur); err != nil {
		t.Fatal(err)
	}
	if cur.Status.Health == nil {
		return cur, "no health yet"
	}
	c := meta.FindStatusCondition(cur.Status.Conditions, keelsonv1alpha1.ConditionHealthy)
	return cur, fmt.Sprintf("health %+v, condition %+v", *cur.Status.Health, c)
}

// touchSync writes the Sync's status as gitsync does after an attempt.
func touchSync(t *testing.T, env *testEnv, name string) {
	t.Helper()
	for range 20 {
		cur, _ := syncHealthOf(t, env, name)
		cur.Status.History = append(cur.Status.History, keelsonv1alpha1.SyncAttempt{Result: "Succeeded"})
		if err := env.st.UpdateStatus(t.Context(), cur); err == nil {
			return
		}
	}
	t.Fatalf("sync %s: too many conflicts", name)
}
