package admission

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/keelson/keelson/store"
)

// uncounted are the resources no quota counts: their objects come and go
// too often for a count to mean anything, and keelson writes them itself.
var uncounted = map[string]bool{
	"events": true, "events.events.k8s.io": true, "leases.coordination.k8s.io": true,
	"endpoints": true, "endpointslices.discovery.k8s.io": true,
	"resourcequotas": true, "limitranges": true, "controllerrevisions.apps": true,
}

// Counted says whether a quota may count objects of r.
func Counted(r store.Resource) bool {
	return r.Namespaced && !uncounted[r.GroupResource()]
}

// storageClassSuffixes of a claim's usage under its class:
// <class>.storageclass.storage.k8s.io/requests.storage and .../persistentvolumeclaims.
const storageClassInfix = ".storageclass.storage.k8s.io/"

// Usage is everything obj counts against a quota that matches it, by
// Kubernetes' names: count/<resource> for every object; for a pod that has
// not ended, pods and its requests and limits (requests.cpu and cpu,
// limits.cpu, memory, ephemeral-storage, extended resources as
// requests.<name>); for a Service, services, services.nodeports and
// services.loadbalancers; for a claim, persistentvolumeclaims and
// requests.storage, also per storage class; configmaps and secrets.
func Usage(r store.Resource, obj store.Object) corev1.ResourceList {
	if obj == nil || !Counted(r) {
		return nil
	}
	one := *resource.NewQuantity(1, resource.DecimalSI)
	u := corev1.ResourceList{corev1.ResourceName("count/" + r.GroupResource()): one}
	switch o := obj.(type) {
	case *corev1.Pod:
		if !podCounts(o) {
			return u
		}
		u[corev1.ResourcePods] = one
		opts := resourcehelper.PodResourcesOptions{}
		for name, q := range resourcehelper.PodRequests(o, opts) {
			u[corev1.ResourceName("requests."+string(name))] = q
			if isStandardCompute(name) {
				u[name] = q
			}
		}
		for name, q := range resourcehelper.PodLimits(o, opts) {
			if isStandardCompute(name) || strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
				u[corev1.ResourceName("limits."+string(name))] = q
			}
		}
	case *corev1.Service:
		u[corev1.ResourceServices] = one
		switch o.Spec.Type {
		case corev1.ServiceTypeLoadBalancer:
			u[corev1.ResourceServicesLoadBalancers] = one
			u[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(len(o.Spec.Ports)), resource.DecimalSI)
		case corev1.ServiceTypeNodePort:
			u[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(len(o.Spec.Ports)), resource.DecimalSI)
		}
	case *corev1.PersistentVolumeClaim:
		u[corev1.ResourcePersistentVolumeClaims] = one
		storage := o.Spec.Resources.Requests[corev1.ResourceStorage]
		u[corev1.ResourceRequestsStorage] = storage
		if class := o.Spec.StorageClassName; class != nil && *class != "" {
			u[corev1.ResourceName(*class+storageClassInfix+"requests.storage")] = storage
			u[corev1.ResourceName(*class+storageClassInfix+"persistentvolumeclaims")] = one
		}
	case *corev1.ConfigMap:
		u[corev1.ResourceConfigMaps] = one
	case *corev1.Secret:
		u[corev1.ResourceSecrets] = one
	}
	return u
}

// podCounts: a pod that has ended counts as an object only, as in
// Kubernetes; one being deleted counts until it is gone.
func podCounts(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func isStandardCompute(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return false
}

// computeNames are the names a pod must give for every container when a
// quota that matches it limits them.
var computeNames = map[corev1.ResourceName]corev1.ResourceName{
	corev1.ResourceRequestsCPU: corev1.ResourceCPU, corev1.ResourceCPU: corev1.ResourceCPU,
	corev1.ResourceRequestsMemory: corev1.ResourceMemory, corev1.ResourceMemory: corev1.ResourceMemory,
	corev1.ResourceLimitsCPU: corev1.ResourceCPU, corev1.ResourceLimitsMemory: corev1.ResourceMemory,
}

// missing names, for a pod matched by a quota limiting hard, the compute
// resources some container leaves unset ("limits.cpu for: app"), as
// Kubernetes refuses such a pod: its usage could not be counted.
func missing(p *corev1.Pod, hard corev1.ResourceList) []string {
	var out []string
	for name := range hard {
		res, ok := computeNames[name]
		if !ok {
			continue
		}
		limits := strings.HasPrefix(string(name), "limits.")
		var without []string
		for _, c := range allContainers(p) {
			list := c.Resources.Requests
			if limits {
				list = c.Resources.Limits
			}
			if _, ok := list[res]; !ok {
				without = append(without, c.Name)
			}
		}
		if len(without) > 0 {
			out = append(out, string(name)+" for: "+strings.Join(without, ","))
		}
	}
	return out
}

func allContainers(p *corev1.Pod) []corev1.Container {
	return append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...)
}

// Kinds are the resources whose objects count toward hard's names.
func Kinds(hard corev1.ResourceList) map[string]bool {
	out := map[string]bool{}
	for name := range hard {
		out[kindOf(name)] = true
	}
	delete(out, "")
	return out
}

// kindOf is the group-resource a quota's resource name counts objects of.
func kindOf(name corev1.ResourceName) string {
	n := string(name)
	switch {
	case strings.HasPrefix(n, "count/"):
		return strings.TrimPrefix(n, "count/")
	case strings.Contains(n, storageClassInfix), name == corev1.ResourcePersistentVolumeClaims, name == corev1.ResourceRequestsStorage:
		return "persistentvolumeclaims"
	case strings.HasPrefix(n, "services"):
		return "services"
	case name == corev1.ResourceConfigMaps:
		return "configmaps"
	case name == corev1.ResourceSecrets:
		return "secrets"
	case name == corev1.ResourceQuotas, name == corev1.ResourceReplicationControllers:
		return ""
	}
	return "pods" // pods, cpu, memory, requests.*, limits.*, hugepages-*
}
