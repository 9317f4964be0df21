package support

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind is a kind keelson accepts from Git and stores, but does not act on
// yet.
type Kind struct {
	// GroupKind of the objects, e.g. apps/StatefulSet.
	GroupKind schema.GroupKind
	// Missing is one sentence saying what keelson does not do for objects
	// of the kind, for people: health messages, Sync status, plan risks.
	Missing string
}

// storedOnly is every kind of schema.supported that nothing in keelson acts
// on. A kind leaves the list in the change that makes it real.
//
// Kinds acted on, and so absent: Namespace (namespace controller), Pod
// (scheduler, agent), ReplicationController, ReplicaSet, Deployment
// (controllers), Service (cluster IPs, EndpointSlices, node proxy, DNS),
// Endpoints (mirrored into EndpointSlices), ConfigMap and Secret (the agent
// reads them into volumes and environment), NodePolicy (node policy
// controller), HelmChart (rendered by gitsync into the objects it syncs).
// Kinds of the store that Git cannot declare (Node, Event, Lease,
// EndpointSlice, IPAddress, ServiceCIDR, ControllerRevision, Sync) never
// reach the list's readers.
//
// ServiceAccount and StorageClass are on it although Kubernetes does
// nothing with them on their own either: each exists only to be read by a
// part keelson lacks. A ServiceAccount is read when pods naming it start
// (its token mounted, its image pull secrets added); keelson mounts no
// token and pulls with no secret. A StorageClass is read by the provisioner
// of the claims of its class; keelson provisions nothing. Someone who
// commits one expects that effect, so it must say that none follows.
var storedOnly = []Kind{
	{gk("apps", "StatefulSet"), "keelson stores StatefulSets but does not run them yet: no pods are made"},
	{gk("apps", "DaemonSet"), "keelson stores DaemonSets but does not run them yet: no pods are made on the nodes"},
	{gk("batch", "Job"), "keelson stores Jobs but does not run them yet: no pods are made"},
	{gk("batch", "CronJob"), "keelson stores CronJobs but does not schedule them yet: no Jobs are made"},
	{gk("", "PersistentVolumeClaim"), "keelson stores PersistentVolumeClaims but does not provision or bind volumes yet: pods that mount the claim do not start"},
	{gk("", "PersistentVolume"), "keelson stores PersistentVolumes but does not bind them to claims yet"},
	{gk("storage.k8s.io", "StorageClass"), "keelson stores StorageClasses but has no provisioner yet: claims of the class get no volume"},
	{gk("autoscaling", "HorizontalPodAutoscaler"), "keelson stores HorizontalPodAutoscalers but does not scale yet: replicas stay as written in Git"},
	{gk("networking.k8s.io", "Ingress"), "keelson stores Ingresses but routes no traffic for them yet: no ingress proxy listens"},
	{gk("", "ResourceQuota"), "keelson stores ResourceQuotas but does not enforce them yet: nothing is counted or refused"},
	{gk("", "LimitRange"), "keelson stores LimitRanges but does not apply them yet: pods get no default requests or limits and none is refused"},
	{gk("", "ServiceAccount"), "keelson stores ServiceAccounts but does not act on them yet: pods that name one get no API token and none of its image pull secrets"},
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
	return missing, ok
}

// StoredOnly returns the kinds keelson stores but does not act on, in a
// fixed order. The slice is a copy.
func StoredOnly() []Kind { return append([]Kind(nil), storedOnly...) }
