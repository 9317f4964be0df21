package reconciler

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// indexServiceSelector keys Services by "namespace/key=value" for each pair
// of their selector, so that a pod event finds the services that may select
// it from its own labels instead of matching every service of the namespace.
const indexServiceSelector = "service-selector"

// addServiceSelectorIndex adds indexServiceSelector to the services'
// informer once, whichever controller asks first.
func addServiceSelectorIndex(services cache.SharedIndexInformer) error {
	if _, ok := services.GetIndexer().GetIndexers()[indexServiceSelector]; ok {
		return nil
	}
	err := services.AddIndexers(cache.Indexers{indexServiceSelector: func(obj any) ([]string, error) {
		s, ok := obj.(*corev1.Service)
		if !ok {
			return nil, nil
		}
		out := make([]string, 0, len(s.Spec.Selector))
		for k, v := range s.Spec.Selector {
			out = append(out, s.Namespace+"/"+k+"="+v)
		}
		return out, nil
	}})
	if err != nil {
		return fmt.Errorf("index services by selector: %w", err)
	}
	return nil
}

// selectsPods reports whether the service's endpoints come from a selector:
// a non-empty one, on any type but ExternalName.
func selectsPods(s *corev1.Service) bool {
	return len(s.Spec.Selector) > 0 && s.Spec.Type != corev1.ServiceTypeExternalName
}

// controlPlaneService reports whether the control plane keeps the service's
// endpoints itself (the kubernetes and kube-dns services).
func controlPlaneService(s *corev1.Service) bool {
	_, ok := s.Labels[keelsonv1alpha1.LabelControlPlane]
	return ok
}

// selectorMatches is the equality-based match of a Service's selector.
func selectorMatches(sel, podLabels map[string]string) bool {
	for k, v := range sel {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// servicesSelecting returns the cached services of namespace whose non-empty
// selector matches podLabels, found through indexServiceSelector.
func servicesSelecting(services cache.SharedIndexInformer, namespace string, podLabels map[string]string) []*corev1.Service {
	var out []*corev1.Service
	seen := map[string]bool{}
	for k, v := range podLabels {
		for _, s := range ByIndex[*corev1.Service](services, indexServiceSelector, namespace+"/"+k+"="+v) {
			if !seen[s.Name] && selectorMatches(s.Spec.Selector, podLabels) {
				out = append(out, s)
			}
			seen[s.Name] = true
		}
	}
	return out
}

// selectedPods returns the cached pods the service's selector matches. The
// label index narrows the search to pods carrying one of the selector's
// pairs (the first key in order), in every namespace; the rest is filtered.
func selectedPods(pods cache.SharedIndexInformer, s *corev1.Service) []*corev1.Pod {
	if len(s.Spec.Selector) == 0 {
		return nil
	}
	keys := make([]string, 0, len(s.Spec.Selector))
	for k := range s.Spec.Selector {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*corev1.Pod
	for _, p := range ByIndex[*corev1.Pod](pods, IndexLabel, keys[0]+"="+s.Spec.Selector[keys[0]]) {
		if p.Namespace == s.Namespace && selectorMatches(s.Spec.Selector, p.Labels) {
			out = append(out, p)
		}
	}
	return out
}

// podEndpointChanged reports whether anything an endpoint is made of
// differs between two versions of a pod (labels aside, which the caller
// compares).
func podEndpointChanged(a, b *corev1.Pod) bool {
	return podReady(a) != podReady(b) ||
		a.Status.PodIP != b.Status.PodIP ||
		!slices.Equal(a.Status.PodIPs, b.Status.PodIPs) ||
		a.Status.Phase != b.Status.Phase ||
		(a.DeletionTimestamp == nil) != (b.DeletionTimestamp == nil) ||
		a.Spec.NodeName != b.Spec.NodeName ||
		a.Spec.Hostname != b.Spec.Hostname ||
		a.Spec.Subdomain != b.Spec.Subdomain ||
		a.Status.HostIP != b.Status.HostIP ||
		!samePorts(a.Spec.Containers, b.Spec.Containers) ||
		!samePorts(a.Spec.InitContainers, b.Spec.InitContainers)
}

// samePorts compares what named target ports are resolved from: the
// containers' ports and whether they are sidecars.
func samePorts(a, b []corev1.Container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i].Ports, b[i].Ports) || (a[i].RestartPolicy == nil) != (b[i].RestartPolicy == nil) ||
			(a[i].RestartPolicy != nil && *a[i].RestartPolicy != *b[i].RestartPolicy) {
			return false
		}
	}
	return true
}

// podServiceHandler returns pod event handlers that enqueue, through
// enqueue, the services selecting the pod before and after the event, when
// something that matters to endpoints changed.
func podServiceHandler(services cache.SharedIndexInformer, enqueue func(key string)) cache.ResourceEventHandler {
	queue := func(p *corev1.Pod) {
		for _, s := range servicesSelecting(services, p.Namespace, p.Labels) {
			enqueue(s.Namespace + "/" + s.Name)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				queue(p)
			}
		},
		UpdateFunc: func(old, cur any) {
			a, ok1 := old.(*corev1.Pod)
			b, ok2 := cur.(*corev1.Pod)
			if !ok1 || !ok2 {
				return
			}
			labelsChanged := !equality.Semantic.DeepEqual(a.Labels, b.Labels)
			if !labelsChanged && !podEndpointChanged(a, b) && a.ResourceVersion != b.ResourceVersion {
				return
			}
			if labelsChanged {
				queue(a)
			}
			queue(b)
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				queue(p)
			}
		},
	}
}

// serviceHandler enqueues a service on add and delete, and on updates that
// are more than a status write (its controllers' own conditions) -- or a
// resync, where the versions are equal.
func serviceHandler(enqueue func(key string)) cache.ResourceEventHandler {
	self := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			enqueue(t.Key)
			return
		}
		if s, ok := obj.(*corev1.Service); ok {
			enqueue(s.Namespace + "/" + s.Name)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: self,
		UpdateFunc: func(old, cur any) {
			a, ok1 := old.(*corev1.Service)
			b, ok2 := cur.(*corev1.Service)
			if ok1 && ok2 && a.ResourceVersion != b.ResourceVersion && a.Generation == b.Generation &&
				equality.Semantic.DeepEqual(a.Labels, b.Labels) && (a.DeletionTimestamp == nil) == (b.DeletionTimestamp == nil) {
				return
			}
			self(cur)
		},
		DeleteFunc: self,
	}
}

// podIPv4 is the pod's first IPv4 address: from status.podIPs, else
// status.podIP, else, for a pod on the host's network, the host's.
func podIPv4(p *corev1.Pod) string {
	cands := make([]string, 0, len(p.Status.PodIPs)+3)
	for _, ip := range p.Status.PodIPs {
		cands = append(cands, ip.IP)
	}
	cands = append(cands, p.Status.PodIP)
	if p.Spec.HostNetwork {
		for _, ip := range p.Status.HostIPs {
			cands = append(cands, ip.IP)
		}
		cands = append(cands, p.Status.HostIP)
	}
	for _, c := range cands {
		if a, err := netip.ParseAddr(c); err == nil && a.Is4() {
			return a.String()
		}
	}
	return ""
}

// podFinished reports whether the pod has ended for good: it serves nothing.
func podFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
