package reconciler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/admission"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// Every namespace gets its default ServiceAccount and the API's CA, kept
// there; a namespace without an object gets them once it holds pods; the
// default ClusterRoles are there for bindings to name, marked as the
// control plane's, and put back when changed.
func TestServiceAccountController(t *testing.T) {
	st := etcdtest.NewStore(t)
	opts := testOptions()
	opts.ServiceAccounts.RootCA = []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	startControllers(t, st, opts)
	ctx := t.Context()
	if err := st.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "loose", Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}); err != nil {
		t.Fatal(err)
	}
	has := func(ns string) (bool, string) {
		sa, cm := &corev1.ServiceAccount{}, &corev1.ConfigMap{}
		if err := st.Get(ctx, ns, admission.DefaultServiceAccount, sa); err != nil {
			return false, "ServiceAccount: " + err.Error()
		}
		if err := st.Get(ctx, ns, admission.RootCAConfigMap, cm); err != nil {
			return false, "ConfigMap: " + err.Error()
		}
		ok := cm.Data["ca.crt"] == string(opts.ServiceAccounts.RootCA) && cm.Labels[keelsonv1alpha1.LabelControlPlane] == "true"
		return ok, fmt.Sprint(cm.Data, cm.Labels)
	}
	for _, ns := range []string{"shop", "loose"} {
		eventually(t, "the default ServiceAccount and the CA in "+ns, func() (bool, string) { return has(ns) })
	}
	if ok, _ := has("nowhere"); ok {
		t.Fatal("a namespace that does not exist got a ServiceAccount")
	}

	// Changed or deleted, they come back.
	cm := &corev1.ConfigMap{}
	if err := st.Get(ctx, "shop", admission.RootCAConfigMap, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["ca.crt"] = "not the CA"
	if err := st.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{}
	if err := st.Get(ctx, "shop", "default", sa); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, store.MustResource("serviceaccounts"), "shop", "default", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ServiceAccount and the CA put back", func() (bool, string) {
		ok, msg := has("shop")
		now := &corev1.ServiceAccount{}
		if err := st.Get(ctx, "shop", "default", now); err != nil || now.UID == sa.UID {
			return false, "the ServiceAccount is not a new one"
		}
		return ok, msg
	})

	// The default ClusterRoles and bindings.
	view := &rbacv1.ClusterRole{}
	eventually(t, "ClusterRole view", func() (bool, string) {
		err := st.Get(ctx, "", "view", view)
		return err == nil && view.Labels[keelsonv1alpha1.LabelControlPlane] == "true" && view.AggregationRule != nil, fmt.Sprint(err, view.Labels)
	})
	for _, name := range []string{"cluster-admin", "system:public-info-viewer", "system:aggregate-to-view"} {
		if err := st.Get(ctx, "", name, &rbacv1.ClusterRole{}); err != nil {
			t.Errorf("ClusterRole %s: %v", name, err)
		}
	}
	crb := &rbacv1.ClusterRoleBinding{}
	if err := st.Get(ctx, "", "cluster-admin", crb); err != nil || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "system:masters" {
		t.Errorf("ClusterRoleBinding cluster-admin: %v %+v", err, crb.Subjects)
	}
	view.AggregationRule = nil
	view.Rules = []rbacv1.PolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}
	if err := st.Update(ctx, view); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ClusterRole view put back", func() (bool, string) {
		cur := &rbacv1.ClusterRole{}
		err := st.Get(ctx, "", "view", cur)
		return err == nil && cur.AggregationRule != nil && len(cur.Rules) == 0, fmt.Sprint(err, cur.Rules)
	})
}
