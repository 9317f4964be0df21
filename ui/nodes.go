package ui

import (
	"errors"
	"net/http"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

type nodeView struct {
	Name, Ready, Roles, Version, Address string
	Unschedulable                        bool
	CPU, Memory, Pods                    usage
}

// usage is one bar: what is used of what the node offers.
type usage struct {
	Used, Capacity string
	// Value and Max feed a <meter>; Known is false when no figure came.
	Value, Max float64
	Known      bool
}

func (u usage) Percent() int {
	if u.Max == 0 {
		return 0
	}
	return int(100 * u.Value / u.Max)
}

// nodeMetrics is the part of metrics.k8s.io's NodeMetricsList the page
// needs.
type nodeMetrics struct {
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Usage corev1.ResourceList `json:"usage"`
	} `json:"items"`
}

func (v *View) nodesPage(w http.ResponseWriter, r *request) {
	p := &page{Title: "Nodes", Nav: "nodes"}
	nodes, err := list(r.Context(), r.api, nodesRes, "", nil)
	if err != nil {
		v.failed(w, r, "nodes.html", p, err)
		return
	}
	var m nodeMetrics
	if err := r.api.get(r.Context(), "/apis/metrics.k8s.io/v1beta1/nodes", nil, &m); errors.Is(err, errSignedOut) {
		v.failed(w, r, "nodes.html", p, err)
		return
	}
	used := map[string]corev1.ResourceList{}
	for _, it := range m.Items {
		used[it.Metadata.Name] = it.Usage
	}
	podsOn := map[string]int64{}
	watches := []watch{watchOf(apiPath(nodesRes, ""), nil, nodes.rv)}
	if pods, err := list(r.Context(), r.api, podsRes, "", nil); err == nil {
		for _, o := range pods.items {
			if pod, ok := o.(*corev1.Pod); ok && pod.Spec.NodeName != "" && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
				podsOn[pod.Spec.NodeName]++
			}
		}
	}
	var views []nodeView
	for _, o := range nodes.items {
		if n, ok := o.(*corev1.Node); ok {
			views = append(views, toNodeView(n, used[n.Name], podsOn[n.Name]))
		}
	}
	sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
	p.Data, p.Live = views, liveURL(watches...)
	v.render(w, r, "nodes.html", p)
}

func toNodeView(n *corev1.Node, used corev1.ResourceList, pods int64) nodeView {
	nv := nodeView{Name: n.Name, Ready: "Unknown", Version: n.Status.NodeInfo.KubeletVersion, Unschedulable: n.Spec.Unschedulable}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			nv.Ready = string(c.Status)
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			nv.Address = a.Address
		}
	}
	for l := range n.Labels {
		if role, ok := cutRole(l); ok {
			nv.Roles += role + " "
		}
	}
	alloc := n.Status.Allocatable
	if len(alloc) == 0 {
		alloc = n.Status.Capacity
	}
	cpu, mem := alloc[corev1.ResourceCPU], alloc[corev1.ResourceMemory]
	nv.CPU = bar(used, corev1.ResourceCPU, cpu, func(q resource.Quantity) float64 { return float64(q.MilliValue()) / 1000 })
	nv.Memory = bar(used, corev1.ResourceMemory, mem, func(q resource.Quantity) float64 { return float64(q.Value()) })
	maxPods := alloc[corev1.ResourcePods]
	nv.Pods = usage{Used: resource.NewQuantity(pods, resource.DecimalSI).String(), Capacity: maxPods.String(),
		Value: float64(pods), Max: float64(maxPods.Value()), Known: !maxPods.IsZero()}
	return nv
}

func bar(used corev1.ResourceList, name corev1.ResourceName, capacity resource.Quantity, f func(resource.Quantity) float64) usage {
	u := usage{Capacity: capacity.String(), Max: f(capacity)}
	if q, ok := used[name]; ok {
		u.Used, u.Value, u.Known = q.String(), f(q), true
	}
	if name == corev1.ResourceMemory {
		u.Capacity = bytesString(capacity.Value())
		if q, ok := used[name]; ok {
			u.Used = bytesString(q.Value())
		}
	}
	return u
}

func cutRole(label string) (string, bool) {
	const prefix = "node-role.kubernetes.io/"
	if len(label) > len(prefix) && label[:len(prefix)] == prefix {
		return label[len(prefix):], true
	}
	return "", false
}
