package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/support"
	"github.com/keelson/keelson/store"
)

// TestSyncHealthKindsNotActedOn: a source whose revision holds a
// HorizontalPodAutoscaler and a PersistentVolumeClaim beside a running
// Deployment is not "every object is healthy": its Sync's health is
// Unsupported, lists both with what keelson does not do, and its Healthy
// condition is False with reason Unsupported. A claim then deleted behind
// Git's back is Missing, which outranks Unsupported.
func TestSyncHealthKindsNotActedOn(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	src := map[string]string{keelsonv1alpha1.LabelSource: "shop"}
	d := newDeployment("web", 2, "localhost/web:1")
	d.Labels = src
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Labels: src},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas: ptr.To(int32(2)), MaxReplicas: 5}}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "data", Labels: src}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg", Labels: src}}
	for _, o := range []store.Object{d, hpa, pvc, cm} {
		if err := env.st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	s := &keelsonv1alpha1.Sync{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: keelsonv1alpha1.SyncSpec{URL: "/srv/shop"},
		Status: keelsonv1alpha1.SyncStatus{LastAppliedRevision: "fedcba9876543210", Inventory: []keelsonv1alpha1.ObjectRef{
			{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
			{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Namespace: "default", Name: "web"},
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg"},
			{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: "default", Name: "data"},
		}}}
	if err := env.st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	hpaSays, _ := support.NotActedOn(autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler").GroupKind())
	pvcSays, _ := support.NotActedOn(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim").GroupKind())
	want := []keelsonv1alpha1.ObjectHealth{
		{ObjectRef: s.Status.Inventory[1], Status: "Unsupported", Message: hpaSays},
		{ObjectRef: s.Status.Inventory[3], Status: "Unsupported", Message: pvcSays},
	}
	eventually(t, "the Sync Unsupported, naming the autoscaler and the claim, once the deployment runs", func() (bool, string) {
		cur, msg := syncHealthOf(t, env, "shop")
		h := cur.Status.Health
		c := meta.FindStatusCondition(cur.Status.Conditions, keelsonv1alpha1.ConditionHealthy)
		return h != nil && h.Status == "Unsupported" && h.Message == "HorizontalPodAutoscaler default/web: "+hpaSays && slices.Equal(h.Objects, want) &&
			c != nil && c.Status == metav1.ConditionFalse && c.Reason == "Unsupported" && c.Message == h.Message, msg
	})

	if err := env.st.Delete(ctx, mustResource("persistentvolumeclaims"), "default", "data", nil); err != nil {
		t.Fatal(err)
	}
	touchSync(t, env, "shop") // claims have no informer: gitsync's next write brings the controller back
	eventually(t, "the deleted claim Missing, ranked above the autoscaler", func() (bool, string) {
		cur, msg := syncHealthOf(t, env, "shop")
		h := cur.Status.Health
		return h != nil && h.Status == "Missing" && strings.HasPrefix(h.Message, "PersistentVolumeClaim default/data: ") && len(h.Objects) == 2 &&
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
