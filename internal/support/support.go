package support

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind is a kind keelson accepts from Git and stores, but does not act on
// yet.
type Kind struct {
	// GroupKind of the objects, e.g. networking.k8s.io/Ingress.
	GroupKind schema.GroupKind
	// Missing is one sentence saying what keelson does not do for objects
	// of the kind, for people: health messages, Sync status, plan risks.
	Missing string
}

// storedOnly is every kind of schema.supported that nothing in keelson acts
// on. A kind leaves the list in the change that makes it real.
//
// Kinds acted on, and so absent: Namespace (namespace controller), Pod
// (scheduler, agent), ReplicationController, ReplicaSet, Deployment,
// StatefulSet, DaemonSet, Job, CronJob (controllers), PersistentVolume and
// PersistentVolumeClaim (bound, provisioned by local-path, mounted by the
// agent), Service (cluster IPs, EndpointSlices, node proxy, DNS),
// Endpoints (mirrored into EndpointSlices), ConfigMap and Secret (the agent
// reads them into volumes and environment), NodePolicy (node policy
// controller), HelmChart (rendered by gitsync into the objects it syncs),
// ServiceAccount (tokens mounted in pods, image pull secrets), Role,
// ClusterRole, RoleBinding, ClusterRoleBinding (the API's RBAC), Ingress
// and IngressClass (the agents' ingress proxy; an Ingress or class no
// controller of keelson's serves is Unsupported by its health rule).
// Kinds of the store that Git cannot declare (Node, Event, EndpointSlice,
// IPAddress, ServiceCIDR, ControllerRevision, Sync) never reach the list's
// readers. A Lease may come from Git, though keelson's own (the agents'
// heartbeats) are written through the API.
//
// The kinds of Kubernetes' own API groups that people keep in Git beside
// their workloads (budgets are acted on; priority classes, network
// policies, admission and API priority configuration, CSI objects are not)
// are stored and served so that such a repository syncs, but those on the
// list have no effect yet. ServiceAccounts (tokens, image pull secrets)
// and RBAC's Roles, ClusterRoles and bindings (the API's authorization) are
// acted on.
//
// StorageClass is on it although Kubernetes does nothing with one on its
// own either: it is read by the provisioner of the claims of its class, and
// keelson provisions only its own class. Someone who commits one expects
// that effect, so it must say that none follows.
var storedOnly = []Kind{
	{gk("storage.k8s.io", "StorageClass"), "keelson stores StorageClasses but provisions volumes only for its own local-path class (provisioner keelson.dev/local-path): claims of other classes bind only to PersistentVolumes that exist"},
	{gk("scheduling.k8s.io", "PriorityClass"), "keelson stores PriorityClasses but does not use them yet: pods naming one get no priority and nothing is preempted"},
	{gk("node.k8s.io", "RuntimeClass"), "keelson stores RuntimeClasses but does not use them yet: pods naming one run with containerd's default runtime"},
	{gk("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"), "keelson stores ValidatingWebhookConfigurations but calls no admission webhooks: objects from Git are checked by keelson's schemas only"},
	{gk("admissionregistration.k8s.io", "MutatingWebhookConfiguration"), "keelson stores MutatingWebhookConfigurations but calls no admission webhooks: objects from Git are stored as written"},
	{gk("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"), "keelson stores ValidatingAdmissionPolicies but does not evaluate them: objects from Git are checked by keelson's schemas only"},
	{gk("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"), "keelson stores ValidatingAdmissionPolicyBindings but does not evaluate their policies: objects from Git are checked by keelson's schemas only"},
	{gk("networking.k8s.io", "NetworkPolicy"), "keelson stores NetworkPolicies but does not enforce them yet: all pod traffic stays allowed"},
	{gk("coordination.k8s.io", "Lease"), "keelson stores Leases but nothing in keelson takes, renews or reads one from Git: it stays as written"},
	{gk("storage.k8s.io", "CSIDriver"), "keelson stores CSIDrivers but runs no CSI plugins: volumes of the driver are neither attached nor mounted"},
	{gk("storage.k8s.io", "VolumeAttachment"), "keelson stores VolumeAttachments but attaches nothing: no CSI attacher acts on them"},
	{gk("storage.k8s.io", "CSIStorageCapacity"), "keelson stores CSIStorageCapacities but its scheduler does not read them"},
	{gk("", "PodTemplate"), "keelson stores PodTemplates but makes no pods from them, as Kubernetes makes none: they are kept for the tools that read them"},
	{gk("flowcontrol.apiserver.k8s.io", "FlowSchema"), "keelson stores FlowSchemas but does not apply API priority and fairness: its API neither classifies nor limits requests by them"},
	{gk("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"), "keelson stores PriorityLevelConfigurations but does not apply API priority and fairness: its API neither classifies nor limits requests by them"},
}

var byGroupKind = func() map[schema.GroupKind]string {
	m := make(map[schema.GroupKind]string, len(storedOnly))
	for _, k := range storedOnly {
		m[k.GroupKind] = k.Missing
	}
	return m
}()

func gk(group, kind string) schema.GroupKind { return schema.GroupKind{Group: group, Kind: kind} }

// NotActedOn reports whether keelson stores objects of kind gk without
// acting on them, and if so the sentence saying what is missing.
func NotActedOn(gk schema.GroupKind) (missing string, ok bool) {
	missing, ok = byGroupKind[gk]
	if !ok {
		return customResource(gk)
	}
	return missing, ok
}

// StoredOnly returns the kinds keelson stores but does not act on, in a
// fixed order. The slice is a copy.
func StoredOnly() []Kind { return append([]Kind(nil), storedOnly...) }
