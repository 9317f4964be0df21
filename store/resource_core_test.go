package store_test

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// TestCoreKindsStored: each kind of Kubernetes' own API groups that keelson
// accepts from Git without acting on it is kept in etcd under its
// group-qualified plural, with the scope and short names kubectl knows, and
// comes back from Get and List as its k8s.io/api type.
func TestCoreKindsStored(t *testing.T) {
	tests := []struct {
		gvk        schema.GroupVersionKind
		key        string
		namespaced bool
		short      []string
	}{
		{gv("rbac.authorization.k8s.io", "Role"), "roles.rbac.authorization.k8s.io", true, nil},
		{gv("rbac.authorization.k8s.io", "RoleBinding"), "rolebindings.rbac.authorization.k8s.io", true, nil},
		{gv("rbac.authorization.k8s.io", "ClusterRole"), "clusterroles.rbac.authorization.k8s.io", false, nil},
		{gv("rbac.authorization.k8s.io", "ClusterRoleBinding"), "clusterrolebindings.rbac.authorization.k8s.io", false, nil},
		{gv("policy", "PodDisruptionBudget"), "poddisruptionbudgets.policy", true, []string{"pdb"}},
		{gv("scheduling.k8s.io", "PriorityClass"), "priorityclasses.scheduling.k8s.io", false, []string{"pc"}},
		{gv("node.k8s.io", "RuntimeClass"), "runtimeclasses.node.k8s.io", false, nil},
		{gv("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"), "validatingwebhookconfigurations.admissionregistration.k8s.io", false, nil},
		{gv("admissionregistration.k8s.io", "MutatingWebhookConfiguration"), "mutatingwebhookconfigurations.admissionregistration.k8s.io", false, nil},
		{gv("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"), "validatingadmissionpolicies.admissionregistration.k8s.io", false, nil},
		{gv("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"), "validatingadmissionpolicybindings.admissionregistration.k8s.io", false, nil},
		{gv("networking.k8s.io", "NetworkPolicy"), "networkpolicies.networking.k8s.io", true, []string{"netpol"}},
		{gv("networking.k8s.io", "IngressClass"), "ingressclasses.networking.k8s.io", false, nil},
		{gv("storage.k8s.io", "CSIDriver"), "csidrivers.storage.k8s.io", false, nil},
		{gv("storage.k8s.io", "VolumeAttachment"), "volumeattachments.storage.k8s.io", false, nil},
		{gv("storage.k8s.io", "CSIStorageCapacity"), "csistoragecapacities.storage.k8s.io", true, nil},
		{gv("", "PodTemplate"), "podtemplates", true, nil},
		{gv("flowcontrol.apiserver.k8s.io", "FlowSchema"), "flowschemas.flowcontrol.apiserver.k8s.io", false, nil},
		{gv("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"), "prioritylevelconfigurations.flowcontrol.apiserver.k8s.io", false, nil},
	}
	s := etcdtest.NewStore(t)
	for _, tt := range tests {
		t.Run(tt.gvk.Kind, func(t *testing.T) {
			r, err := store.ResourceFor(tt.gvk)
			if err != nil {
				t.Fatal(err)
			}
			if r.GroupResource() != tt.key || r.Namespaced != tt.namespaced || !reflect.DeepEqual(r.ShortNames, tt.short) {
				t.Fatalf("resource %s namespaced=%v short=%v, want %s namespaced=%v short=%v",
					r.GroupResource(), r.Namespaced, r.ShortNames, tt.key, tt.namespaced, tt.short)
			}
			obj, err := r.New()
			if err != nil {
				t.Fatal(err)
			}
			obj.SetName("x")
			if r.Namespaced {
				obj.SetNamespace("team-a")
			}
			mustCreate(t, s, obj)
			got, err := r.New()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Get(t.Context(), obj.GetNamespace(), "x", got); err != nil {
				t.Fatal(err)
			}
			if got.GetUID() != obj.GetUID() || got.GetObjectKind().GroupVersionKind() != tt.gvk {
				t.Fatalf("got %s uid %s, want %s uid %s", got.GetObjectKind().GroupVersionKind(), got.GetUID(), tt.gvk, obj.GetUID())
			}
			list, err := s.List(t.Context(), r, store.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 || reflect.TypeOf(list.Items[0]) != reflect.TypeOf(obj) {
				t.Fatalf("list: %d items of %T, want one %T", len(list.Items), list.Items, obj)
			}
		})
	}
}

func gv(group, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: "v1", Kind: kind}
}
