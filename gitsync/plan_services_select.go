package gitsync

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podSource is something of the revision that makes pods: a workload's pod
// template, or a Pod.
type podSource struct {
	what      string // "deployment shop/web", "pod shop/x"
	namespace string
	labels    labels.Set
	spec      *corev1.PodSpec
}

// podSources are the pod sources of a revision, in order of what.
type podSources []podSource

// podPool collects the pod sources of head and of more (objects of files a
// plan did not otherwise read).
func podPool(head, more map[key]*desired) podSources {
	var out podSources
	add := func(d *desired) {
		name := strings.ToLower(d.res.GVK.Kind) + " " + d.key.namespace + "/" + d.key.name
		if w, ok := workloadOf(d.obj); ok {
			out = append(out, podSource{name, d.key.namespace, w.template.Labels, &w.template.Spec})
		} else if p, ok := d.obj.(*corev1.Pod); ok {
			out = append(out, podSource{name, d.key.namespace, p.Labels, &p.Spec})
		}
	}
	for _, d := range head {
		add(d)
	}
	for k, d := range more {
		if head[k] == nil {
			add(d)
		}
	}
	slices.SortFunc(out, func(a, b podSource) int { return strings.Compare(a.what, b.what) })
	return out
}

// selection is what a Service's selector selects: pod sources of the
// revision and, against a cluster, its pods now.
type selection struct {
	selector  labels.Selector
	namespace string
	sources   []podSource
	cluster   bool
	pods      []*corev1.Pod // by name
	ready     int
}

// selection is nil for a Service without a selector (its endpoints are
// someone else's) or with an external name.
func (pool podSources) selection(svc *corev1.Service, cl *clusterState) *selection {
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	s := &selection{selector: labels.SelectorFromSet(svc.Spec.Selector), namespace: svc.Namespace, cluster: cl != nil}
	for _, src := range pool {
		if src.namespace == svc.Namespace && s.selector.Matches(src.labels) {
			s.sources = append(s.sources, src)
		}
	}
	if cl == nil {
		return s
	}
	for _, p := range cl.pods {
		if p.Namespace != svc.Namespace || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || !s.selector.Matches(labels.Set(p.Labels)) {
			continue
		}
		s.pods = append(s.pods, p)
		if podReady(p) {
			s.ready++
		}
	}
	slices.SortFunc(s.pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// maxNamed bounds the pods and sources an effect names.
const maxNamed = 5

// effects says what the selector selects.
func (s *selection) effects() []string {
	if s == nil {
		return nil
	}
	var out []string
	if s.cluster {
		switch n := len(s.pods); n {
		case 0:
			out = append(out, "selects no pod now")
		default:
			names := make([]string, len(s.pods))
			for i, p := range s.pods {
				names[i] = p.Name
			}
			out = append(out, fmt.Sprintf("selects %s now, %d ready: %s", podCount(int32(n)), s.ready, namedList(names)))
		}
	}
	if len(s.sources) > 0 {
		names := make([]string, len(s.sources))
		for i, src := range s.sources {
			names[i] = src.what
		}
		out = append(out, "selects the pods of "+namedList(names))
	}
	return out
}

// namedList joins the first names, and says how many more there are.
func namedList(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(names)-maxNamed)
}

// risks flags a selector that selects nothing, and named target ports that
// nothing selected defines: either leaves the service without endpoints.
func (s *selection) risks(title string, svc *corev1.Service, cluster bool) []Risk {
	if s == nil {
		return nil
	}
	if len(s.sources) == 0 && len(s.pods) == 0 {
		msg := fmt.Sprintf("selector %s selects no pod template of this revision in namespace %s", s.selector, s.namespace)
		if cluster {
			msg = fmt.Sprintf("selector %s selects no pod in namespace %s now, and no pod template of this revision", s.selector, s.namespace)
		}
		return []Risk{{Level: RiskWarning, Code: "selector-selects-nothing", Object: title, Message: msg + ": the service would have no endpoints"}}
	}
	var out []Risk
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.Type != intstr.String || s.defines(p.TargetPort.StrVal, p.Protocol) {
			continue
		}
		out = append(out, Risk{Level: RiskWarning, Code: "target-port-undefined", Object: title, Message: fmt.Sprintf(
			"port %s: targetPort %q is a port name that no selected pod defines (%s): the service would have no endpoints for it",
			portLabel(p), p.TargetPort.StrVal, s.selected())})
	}
	return out
}

// defines reports whether a selected pod source or pod has a port of that
// name and protocol, where the EndpointSlice controller looks for it (as
// Kubernetes does): in its containers, or in its sidecars (init containers
// that keep running).
func (s *selection) defines(name string, proto corev1.Protocol) bool {
	declares := func(cs []corev1.Container, sidecarsOnly bool) bool {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, cp := range c.Ports {
				if cp.Name == name && (cp.Protocol == proto || (cp.Protocol == "" && proto == corev1.ProtocolTCP)) {
					return true
				}
			}
		}
		return false
	}
	has := func(spec *corev1.PodSpec) bool {
		return declares(spec.Containers, false) || declares(spec.InitContainers, true)
	}
	for _, src := range s.sources {
		if has(src.spec) {
			return true
		}
	}
	for _, p := range s.pods {
		if has(&p.Spec) {
			return true
		}
	}
	return false
}

// selected names what is selected, for a message.
func (s *selection) selected() string {
	var names []string
	for _, src := range s.sources {
		names = append(names, src.what)
	}
	if len(s.pods) > 0 {
		names = append(names, podCount(int32(len(s.pods)))+" in the cluster")
	}
	return namedList(names)
}
