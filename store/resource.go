package store

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// Resource describes one kind of object the store keeps: its group, version and
// kind, the lower-case plural resource name used in keys and URLs, and its scope.
type Resource struct {
	// GroupVersionKind of the objects stored under this resource. Required.
	GVK schema.GroupVersionKind
	// Plural is the lower-case plural resource name, e.g. "pods". Required.
	Plural string
	// Namespaced is false for cluster-scoped kinds such as Namespace and Node.
	Namespaced bool
	// ShortNames are the abbreviations kubectl accepts, e.g. "po" for pods.
	ShortNames []string
}

// GroupResource is the resource name as it appears in storage keys: the plural,
// group-qualified when the group is not core ("deployments.apps").
func (r Resource) GroupResource() string {
	if r.GVK.Group == "" {
		return r.Plural
	}
	return r.Plural + "." + r.GVK.Group
}

// String returns the GroupResource.
func (r Resource) String() string { return r.GroupResource() }

func res(group, version, kind, plural string, namespaced bool, short ...string) Resource {
	return Resource{
		GVK:        schema.GroupVersionKind{Group: group, Version: version, Kind: kind},
		Plural:     plural,
		Namespaced: namespaced,
		ShortNames: short,
	}
}

// builtin is every kind keelson stores, in the order discovery lists them.
var builtin = []Resource{
	res("", "v1", "Namespace", "namespaces", false, "ns"),
	res("", "v1", "Node", "nodes", false, "no"),
	res("", "v1", "Pod", "pods", true, "po"),
	res("", "v1", "ReplicationController", "replicationcontrollers", true, "rc"),
	res("", "v1", "Service", "services", true, "svc"),
	res("", "v1", "Endpoints", "endpoints", true, "ep"),
	res("", "v1", "ConfigMap", "configmaps", true, "cm"),
	res("", "v1", "Secret", "secrets", true),
	res("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, "pvc"),
	res("", "v1", "PersistentVolume", "persistentvolumes", false, "pv"),
	res("", "v1", "ResourceQuota", "resourcequotas", true, "quota"),
	res("", "v1", "LimitRange", "limitranges", true, "limits"),
	res("", "v1", "ServiceAccount", "serviceaccounts", true, "sa"),
	res("", "v1", "Event", "events", true, "ev"),
	res("apps", "v1", "Deployment", "deployments", true, "deploy"),
	res("apps", "v1", "ReplicaSet", "replicasets", true, "rs"),
	res("apps", "v1", "StatefulSet", "statefulsets", true, "sts"),
	res("apps", "v1", "DaemonSet", "daemonsets", true, "ds"),
	res("apps", "v1", "ControllerRevision", "controllerrevisions", true),
	res("batch", "v1", "Job", "jobs", true),
	res("batch", "v1", "CronJob", "cronjobs", true, "cj"),
	res("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, "hpa"),
	res("networking.k8s.io", "v1", "Ingress", "ingresses", true, "ing"),
	res("networking.k8s.io", "v1", "IPAddress", "ipaddresses", false, "ip"),
	res("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", false),
	res("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, "sc"),
	res("coordination.k8s.io", "v1", "Lease", "leases", true),
	res("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true),
	res(keelsonv1alpha1.GroupName, "v1alpha1", "Sync", "syncs", false),
	res(keelsonv1alpha1.GroupName, "v1alpha1", "NodePolicy", "nodepolicies", false),
	res(keelsonv1alpha1.GroupName, "v1alpha1", "HelmChart", "helmcharts", true),
	crdResource,
	res("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
	res("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true),
	res("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false),
	res("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false),
	res("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, "pdb"),
	res("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, "pc"),
	res("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", false),
	res("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false),
	res("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false),
	res("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", false),
	res("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", false),
	res("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, "netpol"),
	res("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false),
	res("storage.k8s.io", "v1", "CSIDriver", "csidrivers", false),
	res("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", false),
	res("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities", true),
	res("", "v1", "PodTemplate", "podtemplates", true),
	res("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", false),
	res("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", false),
}

var (
	byGVK    = map[schema.GroupVersionKind]Resource{}
	byPlural = map[string]Resource{}
)

func init() {
	// keelson's own kinds join client-go's scheme, so that every process
	// (and client-go in tests) encodes and decodes them like the built-in ones.
	utilruntime.Must(keelsonv1alpha1.AddToScheme(scheme.Scheme))
	for _, r := range builtin {
		byGVK[r.GVK] = r
		byPlural[r.GroupResource()] = r
	}
}

// Resources returns every resource the store keeps. The slice is a copy.
func Resources() []Resource {
	return append([]Resource(nil), builtin...)
}

// ResourceFor returns the resource of a group/version/kind, or an error wrapping
// ErrUnknownKind.
func ResourceFor(gvk schema.GroupVersionKind) (Resource, error) {
	r, ok := byGVK[gvk]
	if !ok {
		if r, ok = customByGVK(gvk); ok {
			return r, nil
		}
		return Resource{}, fmt.Errorf("%w: %s", ErrUnknownKind, gvk)
	}
	return r, nil
}

// ResourceByName looks a resource up by its group-qualified plural name
// ("pods", "deployments.apps"), as used in keys.
func ResourceByName(groupResource string) (Resource, error) {
	r, ok := byPlural[strings.ToLower(groupResource)]
	if !ok {
		if r, ok = customByName(strings.ToLower(groupResource)); ok {
			return r, nil
		}
		return Resource{}, fmt.Errorf("%w: resource %q", ErrUnknownKind, groupResource)
	}
	return r, nil
}

// MustResource is ResourceByName for the names of keelson's built-in
// resources, which always resolve: it panics on any other.
func MustResource(groupResource string) Resource {
	r, err := ResourceByName(groupResource)
	if err != nil {
		panic(err)
	}
	return r
}

// ResourceOf returns the resource of a typed object (a *corev1.Pod, …), found
// through client-go's scheme; the object's TypeMeta is not consulted.
func ResourceOf(obj runtime.Object) (Resource, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil {
		return Resource{}, fmt.Errorf("%w: %T", ErrUnknownKind, obj)
	}
	for _, gvk := range gvks {
		if r, ok := byGVK[gvk]; ok {
			return r, nil
		}
		if r, ok := customByGVK(gvk); ok {
			return r, nil
		}
	}
	return Resource{}, fmt.Errorf("%w: %s", ErrUnknownKind, gvks[0])
}

// New returns a new, empty typed object of the resource's kind, with its TypeMeta
// filled in.
func (r Resource) New() (Object, error) {
	o, err := scheme.Scheme.New(r.GVK)
	if err != nil {
		return newCustom(r)
	}
	obj, ok := o.(Object)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no object metadata", ErrUnknownKind, r.GVK)
	}
	obj.GetObjectKind().SetGroupVersionKind(r.GVK)
	return obj, nil
}
