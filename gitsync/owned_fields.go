package gitsync

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/admission"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

// keepOthersFields copies into want the spec fields that other writers own
// on objects from Git, so that a sync neither reverts them nor counts them as
// drift: the scheduler's binding (pod.spec.nodeName), what the service
// allocator fills in a Service (keepServiceFields), and the volume binder's
// side of a claim and a volume (volumeName, claimRef, the binding
// annotations); each only where Git leaves the field empty.
func keepOthersFields(want, cur store.Object) {
	switch w := want.(type) {
	case *corev1.Pod:
		if c, ok := cur.(*corev1.Pod); ok {
			if w.Spec.NodeName == "" {
				w.Spec.NodeName = c.Spec.NodeName
			}
			keepLimitDefaults(w, c)
			keepServiceAccountDefaults(w, c)
		}
	case *corev1.Service:
		if c, ok := cur.(*corev1.Service); ok {
			keepServiceFields(w, c)
		}
	case *corev1.PersistentVolumeClaim:
		if c, ok := cur.(*corev1.PersistentVolumeClaim); ok {
			if w.Spec.VolumeName == "" {
				w.Spec.VolumeName = c.Spec.VolumeName
			}
			keepAnnotations(w, c, bindingAnnotations)
		}
	case *corev1.PersistentVolume:
		if c, ok := cur.(*corev1.PersistentVolume); ok {
			keepClaimRef(w, c)
			keepAnnotations(w, c, bindingAnnotations)
		}
	}
}

// keepLimitDefaults keeps in a pod from Git the requests and limits a
// LimitRange set in it when it was stored (admission), where Git sets none.
func keepLimitDefaults(w, c *corev1.Pod) {
	if _, ok := c.Annotations[admission.LimitRangerAnnotation]; !ok {
		return
	}
	keepAnnotations(w, c, []string{admission.LimitRangerAnnotation})
	fill := func(want []corev1.Container, have []corev1.Container) {
		for i := range want {
			for _, h := range have {
				if h.Name == want[i].Name {
					want[i].Resources.Requests = withMissing(want[i].Resources.Requests, h.Resources.Requests)
					want[i].Resources.Limits = withMissing(want[i].Resources.Limits, h.Resources.Limits)
				}
			}
		}
	}
	fill(w.Spec.InitContainers, c.Spec.InitContainers)
	fill(w.Spec.Containers, c.Spec.Containers)
}

// keepServiceAccountDefaults keeps in a pod from Git what ServiceAccount
// admission set in it when it was stored: the default ServiceAccount's name
// where Git names none, and the kube-api-access volume with its mounts.
func keepServiceAccountDefaults(w, c *corev1.Pod) {
	if w.Spec.ServiceAccountName == "" && w.Spec.DeprecatedServiceAccount == "" {
		w.Spec.ServiceAccountName, w.Spec.DeprecatedServiceAccount = c.Spec.ServiceAccountName, c.Spec.DeprecatedServiceAccount
	}
	var name string
	for _, v := range c.Spec.Volumes {
		if strings.HasPrefix(v.Name, admission.APIAccessVolumePrefix) && !slices.ContainsFunc(w.Spec.Volumes, func(x corev1.Volume) bool { return x.Name == v.Name }) {
			name = v.Name
			w.Spec.Volumes = append(w.Spec.Volumes, v)
		}
	}
	if name == "" {
		return
	}
	keep := func(want, have []corev1.Container) {
		for i := range want {
			for _, h := range have {
				if h.Name != want[i].Name {
					continue
				}
				for _, m := range h.VolumeMounts {
					if m.Name == name {
						want[i].VolumeMounts = append(want[i].VolumeMounts, m)
					}
				}
			}
		}
	}
	keep(w.Spec.InitContainers, c.Spec.InitContainers)
	keep(w.Spec.Containers, c.Spec.Containers)
}

func withMissing(want, have corev1.ResourceList) corev1.ResourceList {
	for name, q := range have {
		if _, ok := want[name]; !ok {
			if want == nil {
				want = corev1.ResourceList{}
			}
			want[name] = q.DeepCopy()
		}
	}
	return want
}

// bindingAnnotations are the annotations Kubernetes' volume binding writes
// on claims and volumes (keelson's binder and scheduler among them): the
// node chosen for a claim's first pod, and that a binding is complete and
// who made it.
var bindingAnnotations = []string{
	"volume.kubernetes.io/selected-node",
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
	"volume.kubernetes.io/storage-provisioner",
	"pv.kubernetes.io/provisioned-by",
}

// keepAnnotations copies into want those of keys that the stored object
// has and Git does not write.
func keepAnnotations(want, cur store.Object, keys []string) {
	a := want.GetAnnotations()
	for _, k := range keys {
		v, ok := cur.GetAnnotations()[k]
		if _, set := a[k]; !ok || set {
			continue
		}
		if a == nil {
			a = map[string]string{}
		}
		a[k] = v
	}
	want.SetAnnotations(a)
}

// keepClaimRef keeps the binder's claimRef of a volume from Git: all of it
// when Git writes none, and the claim's uid and version when Git sets the
// volume aside for that same claim by name.
func keepClaimRef(w, c *corev1.PersistentVolume) {
	cr := c.Spec.ClaimRef
	switch wr := w.Spec.ClaimRef; {
	case cr == nil:
	case wr == nil:
		w.Spec.ClaimRef = cr.DeepCopy()
	case wr.Namespace == cr.Namespace && wr.Name == cr.Name && wr.UID == "":
		ref := cr.DeepCopy()
		if wr.Kind != "" || wr.APIVersion != "" {
			ref.Kind, ref.APIVersion = wr.Kind, wr.APIVersion
		}
		w.Spec.ClaimRef = ref
	}
}

// keepServiceFields keeps the allocator's values of a Service that Git leaves
// empty: the cluster IP and what goes with it while the service still has
// one, and the node ports while its type still needs them. A value Git
// writes is left alone, even when it differs: the sync refuses a cluster IP
// that changes (checkServices), and a node port in Git is Git's.
func keepServiceFields(w, c *corev1.Service) {
	if w.Spec.Type == corev1.ServiceTypeExternalName || c.Spec.Type == corev1.ServiceTypeExternalName {
		// An external name has no cluster IP, node ports or families.
		return
	}
	ws, cs := &w.Spec, &c.Spec
	if ws.ClusterIP == "" && len(ws.ClusterIPs) == 0 && allocatedIP(cs.ClusterIP) {
		ws.ClusterIP = cs.ClusterIP
	}
	if ws.ClusterIP != "" && ws.ClusterIP == cs.ClusterIP {
		// The families describe the address (or None, for a headless
		// service): kept only while the address is the same.
		if len(ws.ClusterIPs) == 0 && len(cs.ClusterIPs) > 0 && cs.ClusterIPs[0] == ws.ClusterIP {
			ws.ClusterIPs = slices.Clone(cs.ClusterIPs)
		}
		if len(ws.IPFamilies) == 0 {
			ws.IPFamilies = slices.Clone(cs.IPFamilies)
		}
		if ws.IPFamilyPolicy == nil && cs.IPFamilyPolicy != nil {
			p := *cs.IPFamilyPolicy
			ws.IPFamilyPolicy = &p
		}
	}
	if servicenet.HasNodePorts(w) && servicenet.HasNodePorts(c) {
		keepNodePorts(ws.Ports, cs.Ports)
	}
	if needsHealthCheckPort(w) && needsHealthCheckPort(c) && ws.HealthCheckNodePort == 0 {
		ws.HealthCheckNodePort = cs.HealthCheckNodePort
	}
}

// keepNodePorts gives each port of want without a node port the node port of
// the same port in cur: the one of the same name, else of the same port
// number and protocol. A node port serves one port of each protocol (the
// allocator gives a TCP and a UDP port of one number the same), so one that
// want already uses for a protocol is not given to another port of it.
func keepNodePorts(want, cur []corev1.ServicePort) {
	type use struct {
		port  int32
		proto corev1.Protocol
	}
	used := map[use]bool{}
	for _, p := range want {
		if p.NodePort != 0 {
			used[use{p.NodePort, p.Protocol}] = true
		}
	}
	take := func(p *corev1.ServicePort, match func(c corev1.ServicePort) bool) {
		for _, c := range cur {
			if u := (use{c.NodePort, p.Protocol}); c.NodePort != 0 && !used[u] && match(c) {
				used[u], p.NodePort = true, c.NodePort
				return
			}
		}
	}
	// Names first, for all ports, so that a port matched by number never
	// takes the node port of a port matched by name.
	for i := range want {
		if p := &want[i]; p.NodePort == 0 && p.Name != "" {
			take(p, func(c corev1.ServicePort) bool { return c.Name == p.Name })
		}
	}
	for i := range want {
		if p := &want[i]; p.NodePort == 0 {
			take(p, func(c corev1.ServicePort) bool { return c.Port == p.Port && c.Protocol == p.Protocol })
		}
	}
}

// primaryIP is a Service's cluster IP as written: clusterIP, or the first of
// clusterIPs when only they are given.
func primaryIP(s *corev1.Service) string {
	if s.Spec.ClusterIP == "" && len(s.Spec.ClusterIPs) > 0 {
		return s.Spec.ClusterIPs[0]
	}
	return s.Spec.ClusterIP
}

// allocatedIP reports whether a Service's clusterIP is an address, neither
// empty (none yet) nor None (headless).
func allocatedIP(ip string) bool {
	return ip != "" && ip != corev1.ClusterIPNone
}

// needsClusterIP reports whether s gets a cluster IP from the allocator or
// from Git: every type but ExternalName, unless headless.
func needsClusterIP(s *corev1.Service) bool {
	return s.Spec.Type != corev1.ServiceTypeExternalName && primaryIP(s) != corev1.ClusterIPNone
}

// needsHealthCheckPort reports whether s gets a health check node port: a
// LoadBalancer that keeps traffic on the nodes of its endpoints.
func needsHealthCheckPort(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}
