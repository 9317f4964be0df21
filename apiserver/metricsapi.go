package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/keelson/keelson/store"
)

// The resource metrics API (metrics.k8s.io/v1beta1), which kubectl top and
// the autoscaler read: usage gathered from every node agent's /stats/summary.
var (
	metricsGV    = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}
	metricsNodes = store.Resource{GVK: metricsGV.WithKind("NodeMetrics"), Plural: "nodes"}
	metricsPods  = store.Resource{GVK: metricsGV.WithKind("PodMetrics"), Plural: "pods", Namespaced: true}
)

// metricsVerbs are what the metrics API answers: no watch.
var metricsVerbs = []string{"get", "list"}

func (s *Server) registerMetricsAPI() {
	s.mux.HandleFunc("GET /apis/metrics.k8s.io/v1beta1/nodes", s.nodeMetrics)
	s.mux.HandleFunc("GET /apis/metrics.k8s.io/v1beta1/nodes/{name}", s.nodeMetrics)
	s.mux.HandleFunc("GET /apis/metrics.k8s.io/v1beta1/pods", s.servePodMetrics)
	s.mux.HandleFunc("GET /apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", s.servePodMetrics)
	s.mux.HandleFunc("GET /apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}", s.servePodMetrics)
}

// summary is the part of an agent's /stats/summary the metrics API reads.
type summary struct {
	Node struct {
		CPU    *cpuStats    `json:"cpu"`
		Memory *memoryStats `json:"memory"`
	} `json:"node"`
	Pods []struct {
		PodRef struct {
			Name, Namespace string
		} `json:"podRef"`
		Containers []struct {
			Name   string       `json:"name"`
			CPU    *cpuStats    `json:"cpu"`
			Memory *memoryStats `json:"memory"`
		} `json:"containers"`
	} `json:"pods"`
}

type cpuStats struct {
	Time           time.Time `json:"time"`
	UsageNanoCores *uint64   `json:"usageNanoCores"`
}

type memoryStats struct {
	WorkingSetBytes *uint64 `json:"workingSetBytes"`
}

func usage(cpu *cpuStats, mem *memoryStats) corev1.ResourceList {
	out := corev1.ResourceList{}
	if cpu != nil && cpu.UsageNanoCores != nil {
		out[corev1.ResourceCPU] = *resource.NewScaledQuantity(int64(*cpu.UsageNanoCores), resource.Nano)
	}
	if mem != nil && mem.WorkingSetBytes != nil {
		out[corev1.ResourceMemory] = *resource.NewQuantity(int64(*mem.WorkingSetBytes), resource.BinarySI)
	}
	return out
}

// summaries asks every node's agent for its summary, in parallel; nodes that
// do not answer are left out, as metrics-server leaves them out.
func (s *Server) summaries(ctx context.Context, nodeName string) (map[string]*summary, error) {
	nodeRes, err := store.ResourceByName("nodes")
	if err != nil {
		return nil, err
	}
	nodes, err := s.cfg.Store.List(ctx, nodeRes, store.ListOptions{Shared: true})
	if err != nil {
		return nil, err
	}
	out := map[string]*summary{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, obj := range nodes.Items {
		name := obj.GetName()
		if nodeName != "" && name != nodeName {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			sum, err := s.agentSummary(ctx, name)
			if err != nil {
				s.log.Debug("node usage", "node", name, "err", err)
				return
			}
			mu.Lock()
			out[name] = sum
			mu.Unlock()
		})
	}
	wg.Wait()
	return out, nil
}

func (s *Server) agentSummary(ctx context.Context, node string) (*summary, error) {
	base, token, err := s.agentOf(ctx, node)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stats/summary", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := agentClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent of %s answered %s", node, resp.Status)
	}
	var sum summary
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil {
		return nil, fmt.Errorf("summary of %s: %w", node, err)
	}
	return &sum, nil
}

func (s *Server) metricsSelector(w http.ResponseWriter, r *http.Request) (labels.Selector, bool) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("labelSelector: %v", err)))
		return nil, false
	}
	return sel, true
}

func (s *Server) nodeMetrics(w http.ResponseWriter, r *http.Request) {
	u, name := userFrom(r.Context()), r.PathValue("name")
	if err := s.forbiddenRead(r.Context(), u, schema.GroupResource{Group: metricsGV.Group, Resource: "nodes"}, getOrList(name), "", name); err != nil {
		writeStatus(w, err)
		return
	}
	sel, ok := s.metricsSelector(w, r)
	if !ok {
		return
	}
	sums, err := s.summaries(r.Context(), name)
	if err != nil {
		writeStatus(w, statusError(err, schema.GroupResource{Resource: "nodes"}, name))
		return
	}
	list := &metricsv1beta1.NodeMetricsList{TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: metricsGV.String()}}
	for node, sum := range sums {
		var n corev1.Node
		if err := s.cfg.Store.Get(r.Context(), "", node, &n); err != nil || !sel.Matches(labels.Set(n.Labels)) {
			continue
		}
		m := metricsv1beta1.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: node, Labels: n.Labels, CreationTimestamp: metav1.Now()},
			Window:     metav1.Duration{Duration: 10 * time.Second},
			Usage:      usage(sum.Node.CPU, sum.Node.Memory),
		}
		if sum.Node.CPU != nil {
			m.Timestamp = metav1.NewTime(sum.Node.CPU.Time)
		}
		list.Items = append(list.Items, m)
	}
	if name != "" {
		if len(list.Items) == 0 {
			writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Group: metricsGV.Group, Resource: "nodes"}, name))
			return
		}
		item := list.Items[0]
		item.TypeMeta = metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: metricsGV.String()}
		writeJSON(w, http.StatusOK, &item)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) servePodMetrics(w http.ResponseWriter, r *http.Request) {
	u, ns, name := userFrom(r.Context()), r.PathValue("namespace"), r.PathValue("name")
	if err := s.forbiddenRead(r.Context(), u, schema.GroupResource{Group: metricsGV.Group, Resource: "pods"}, getOrList(name), ns, name); err != nil {
		writeStatus(w, err)
		return
	}
	sel, ok := s.metricsSelector(w, r)
	if !ok {
		return
	}
	items, err := s.podMetrics(r.Context(), ns, name, sel)
	if err != nil {
		writeStatus(w, statusError(err, schema.GroupResource{Resource: "pods"}, name))
		return
	}
	list := &metricsv1beta1.PodMetricsList{TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: metricsGV.String()}, Items: items}
	if name != "" {
		if len(list.Items) == 0 {
			writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Group: metricsGV.Group, Resource: "pods"}, name))
			return
		}
		item := list.Items[0]
		item.TypeMeta = metav1.TypeMeta{Kind: "PodMetrics", APIVersion: metricsGV.String()}
		writeJSON(w, http.StatusOK, &item)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// PodMetrics returns the usage of every pod the node agents run, as the
// resource metrics API lists it: what the autoscaler reads.
func (s *Server) PodMetrics(ctx context.Context) ([]metricsv1beta1.PodMetrics, error) {
	return s.podMetrics(ctx, "", "", labels.Everything())
}

// podMetrics gathers the usage of the pods of namespace ("" for all) named
// name ("" for all) whose labels sel matches, from every agent.
func (s *Server) podMetrics(ctx context.Context, ns, name string, sel labels.Selector) ([]metricsv1beta1.PodMetrics, error) {
	sums, err := s.summaries(ctx, "")
	if err != nil {
		return nil, err
	}
	var items []metricsv1beta1.PodMetrics
	for _, sum := range sums {
		for _, ps := range sum.Pods {
			if (ns != "" && ps.PodRef.Namespace != ns) || (name != "" && ps.PodRef.Name != name) {
				continue
			}
			var p corev1.Pod
			if err := s.cfg.Store.Get(ctx, ps.PodRef.Namespace, ps.PodRef.Name, &p); err != nil || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			m := metricsv1beta1.PodMetrics{
				ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, CreationTimestamp: metav1.Now()},
				Window:     metav1.Duration{Duration: 10 * time.Second},
			}
			for _, c := range ps.Containers {
				m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: usage(c.CPU, c.Memory)})
				if c.CPU != nil {
					m.Timestamp = metav1.NewTime(c.CPU.Time)
				}
			}
			items = append(items, m)
		}
	}
	return items, nil
}

func getOrList(name string) string {
	if name == "" {
		return "list"
	}
	return "get"
}
