package ui

import (
	"errors"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

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

// High is where the meter turns to warn: 80% of what the node offers.
func (u usage) High() float64 { return 0.8 * u.Max }

// Percent is the part used, in percent.
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
	nodes, err := r.api.list(r.Context(), nodesRes, "", nil)
	if err != nil {
		v.failed(w, r, "nodes.html", p, err)
		return
	}
	var m nodeMetrics
	if err := r.api.getInto(r.Context(), "/apis/metrics.k8s.io/v1beta1/nodes", nil, &m); errors.Is(err, errSignedOut) {
		v.failed(w, r, "nodes.html", p, err)
		return
	}
	used := map[string]corev1.ResourceList{}
	for _, it := range m.Items {
		used[it.Metadata.Name] = it.Usage
	}
	podsOn := map[string]int64{}
	watches := []watch{watchOf(apiPath(nodesRes, ""), nil, nodes.rv)}
	if pods, err := r.api.list(r.Context(), podsRes, "", nil); err == nil {
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
	var roles []string
	for l := range n.Labels {
		if role, ok := strings.CutPrefix(l, "node-role.kubernetes.io/"); ok && role != "" {
			roles = append(roles, role)
		}
	}
	sort.Strings(roles)
	nv.Roles = strings.Join(roles, ",")
	alloc := n.Status.Allocatable
	if len(alloc) == 0 {
		alloc = n.Status.Capacity
	}
	cores := func(q resource.Quantity) float64 { return float64(q.MilliValue()) / 1000 }
	nv.CPU = bar(alloc[corev1.ResourceCPU], used, corev1.ResourceCPU, cores, func(q resource.Quantity) string {
		return strconv.FormatFloat(math.Round(cores(q)*100)/100, 'f', -1, 64) + " cores"
	})
	nv.Memory = bar(alloc[corev1.ResourceMemory], used, corev1.ResourceMemory,
		func(q resource.Quantity) float64 { return float64(q.Value()) },
		func(q resource.Quantity) string { return bytesString(q.Value()) })
	maxPods := alloc[corev1.ResourcePods]
	podsUsed := *resource.NewQuantity(pods, resource.DecimalSI)
	nv.Pods = bar(maxPods, corev1.ResourceList{corev1.ResourcePods: podsUsed}, corev1.ResourcePods,
		func(q resource.Quantity) float64 { return float64(q.Value()) }, quantity)
	nv.Pods.Known = !maxPods.IsZero()
	return nv
}

// bar is the usage of resource name out of capacity: value gives the
// meter's figures, text the words.
func bar(capacity resource.Quantity, used corev1.ResourceList, name corev1.ResourceName,
	value func(resource.Quantity) float64, text func(resource.Quantity) string) usage {
	u := usage{Capacity: text(capacity), Max: value(capacity)}
	if q, ok := used[name]; ok {
		u.Used, u.Value, u.Known = text(q), value(q), true
	}
	return u
}

func quantity(q resource.Quantity) string { return q.String() }
