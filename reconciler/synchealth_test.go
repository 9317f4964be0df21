package reconciler

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/store"
)

// TestSyncHealthRollUp: a source's Sync gets the health of the objects its
// applied revision holds, as they change: a Deployment rolling out is
// Progressing, Healthy once its pods run; an object deleted behind Git's
// back is Missing.
func TestSyncHealthRollUp(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	d := newDeployment("web", 2, "localhost/web:1")
	d.Labels = map[string]string{keelsonv1alpha1.LabelSource: "apps"}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg", Labels: map[string]string{keelsonv1alpha1.LabelSource: "apps"}}}
	for _, o := range []store.Object{d, cm} {
		if err := env.st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	s := &keelsonv1alpha1.Sync{
		ObjectMeta: metav1.ObjectMeta{Name: "apps"},
		Spec:       keelsonv1alpha1.SyncSpec{URL: "/srv/apps"},
		Status: keelsonv1alpha1.SyncStatus{
			LastAppliedRevision: "0123456789abcdef",
			Inventory: []keelsonv1alpha1.ObjectRef{
				{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
				{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg"},
			},
		},
	}
	if err := env.st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	health := func() (*keelsonv1alpha1.Sync, string) {
		cur := &keelsonv1alpha1.Sync{}
		if err := env.st.Get(ctx, "", "apps", cur); err != nil {
			t.Fatal(err)
		}
		if cur.Status.Health == nil {
			return cur, "no health yet"
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, keelsonv1alpha1.ConditionHealthy)
		return cur, fmt.Sprintf("health %+v, condition %+v", *cur.Status.Health, c)
	}
	eventually(t, "the Sync healthy once the deployment's pods run", func() (bool, string) {
		cur, msg := health()
		c := meta.FindStatusCondition(cur.Status.Conditions, keelsonv1alpha1.ConditionHealthy)
		return cur.Status.Health != nil && cur.Status.Health.Status == "Healthy" && cur.Status.Health.Revision == "0123456789abcdef" &&
			c != nil && c.Status == metav1.ConditionTrue && len(cur.Status.Health.Objects) == 0, msg
	})
	if err := env.st.Delete(ctx, store.MustResource("configmaps"), "default", "cfg", nil); err != nil {
		t.Fatal(err)
	}
	// A ConfigMap has no informer here: a change of the Deployment (or a
	// resync) brings the controller back; touch the Sync as gitsync would.
	for i := 0; ; i++ {
		cur, _ := health()
		cur.Status.History = append(cur.Status.History, keelsonv1alpha1.SyncAttempt{Result: "Succeeded"})
		err := env.st.UpdateStatus(ctx, cur)
		if err == nil {
			break
		}
		if i == 20 {
			t.Fatal(err)
		}
	}
	eventually(t, "the deleted ConfigMap reported Missing", func() (bool, string) {
		cur, msg := health()
		h := cur.Status.Health
		c := meta.FindStatusCondition(cur.Status.Conditions, keelsonv1alpha1.ConditionHealthy)
		return h != nil && h.Status == "Missing" && len(h.Objects) == 1 && h.Objects[0].Name == "cfg" &&
			c != nil && c.Status == metav1.ConditionFalse && c.Reason == "Missing", msg
	})
	// The ConfigMap back and a rollout to its end: Healthy again.
	back := cm.DeepCopy()
	back.ResourceVersion = ""
	if err := env.st.Create(ctx, back); err != nil {
		t.Fatal(err)
	}
	bump := newDeployment("web", 3, "localhost/web:2")
	bump.Labels = map[string]string{keelsonv1alpha1.LabelSource: "apps"}
	if err := env.update(bump); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Healthy again after the ConfigMap is back and the rollout ends", func() (bool, string) {
		cur, msg := health()
		return cur.Status.Health != nil && cur.Status.Health.Status == "Healthy", msg
	})
}

// A quota's and a budget's health follow their rules in the roll-up too,
// not only their existence: a namespace over its quota is Degraded.
func TestSyncHealthQuotaRule(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	src := map[string]string{keelsonv1alpha1.LabelSource: "limits"}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}}
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tight", Labels: src},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/configmaps": resource.MustParse("0")}},
	}
	for _, o := range []store.Object{cm, q} {
		if err := env.st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	s := &keelsonv1alpha1.Sync{
		ObjectMeta: metav1.ObjectMeta{Name: "limits"},
		Spec:       keelsonv1alpha1.SyncSpec{URL: "/srv/limits"},
		Status: keelsonv1alpha1.SyncStatus{
			LastAppliedRevision: "0123456789abcdef",
			Inventory:           []keelsonv1alpha1.ObjectRef{{APIVersion: "v1", Kind: "ResourceQuota", Namespace: "default", Name: "tight"}},
		},
	}
	if err := env.st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Sync Degraded by its quota", func() (bool, string) {
		cur := &keelsonv1alpha1.Sync{}
		if err := env.st.Get(ctx, "", "limits", cur); err != nil {
			t.Fatal(err)
		}
		h := cur.Status.Health
		if h == nil {
			return false, "no health yet"
		}
		return h.Status == "Degraded" && strings.Contains(h.Message, "uses more than its quota allows"), fmt.Sprintf("%+v", *h)
	})
}

// TestSyncHealthIngressOfAClassOfKeelsons: an Ingress that names a class
// of keelson's controller under a name of its own waits for the proxy's
// addresses; it is not Unsupported, as the name alone would say.
func TestSyncHealthIngressOfAClassOfKeelsons(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	class := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "internal"}, Spec: networkingv1.IngressClassSpec{Controller: ingressclass.Controller}}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "inside", Labels: map[string]string{keelsonv1alpha1.LabelSource: "net"}},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("internal"),
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	for _, o := range []store.Object{class, ing} {
		if err := env.st.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	s := &keelsonv1alpha1.Sync{
		ObjectMeta: metav1.ObjectMeta{Name: "net"},
		Spec:       keelsonv1alpha1.SyncSpec{URL: "/srv/net"},
		Status: keelsonv1alpha1.SyncStatus{
			LastAppliedRevision: "0123456789abcdef",
			Inventory:           []keelsonv1alpha1.ObjectRef{{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "default", Name: "inside"}},
		},
	}
	if err := env.st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Sync waiting for the proxy's addresses", func() (bool, string) {
		cur := &keelsonv1alpha1.Sync{}
		if err := env.st.Get(ctx, "", "net", cur); err != nil {
			t.Fatal(err)
		}
		h := cur.Status.Health
		if h == nil {
			return false, "no health yet"
		}
		return h.Status == "Progressing" && strings.Contains(h.Message, "waiting for the ingress proxy's addresses"), fmt.Sprintf("%+v", *h)
	})
}
