package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/agent/runtime"
)

// The shapes of the kubelet's /stats/summary that keelson fills: enough for a
// metrics API (kubectl top) to read CPU and memory of the node, pods and
// containers. Field names are the kubelet's.
type (
	// Summary is the node's and its pods' resource use.
	Summary struct {
		Node NodeStats  `json:"node"`
		Pods []PodStats `json:"pods"`
	}
	// NodeStats is the whole machine's use.
	NodeStats struct {
		NodeName string       `json:"nodeName"`
		CPU      *CPUStats    `json:"cpu,omitempty"`
		Memory   *MemoryStats `json:"memory,omitempty"`
	}
	// PodStats is one pod's containers' use.
	PodStats struct {
		PodRef     PodRef           `json:"podRef"`
		Containers []ContainerStats `json:"containers"`
	}
	// PodRef names a pod.
	PodRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	}
	// ContainerStats is one container's use.
	ContainerStats struct {
		Name   string       `json:"name"`
		CPU    *CPUStats    `json:"cpu,omitempty"`
		Memory *MemoryStats `json:"memory,omitempty"`
	}
	// CPUStats is CPU use: total time, and the rate over the last interval.
	CPUStats struct {
		Time                 time.Time `json:"time"`
		UsageNanoCores       *uint64   `json:"usageNanoCores,omitempty"`
		UsageCoreNanoSeconds *uint64   `json:"usageCoreNanoSeconds,omitempty"`
	}
	// MemoryStats is memory in use.
	MemoryStats struct {
		Time            time.Time `json:"time"`
		WorkingSetBytes *uint64   `json:"workingSetBytes,omitempty"`
	}
)

// sampler keeps the last two usage samples of each container and of the node,
// taken every interval, to report rates, and what the eviction loop made of
// them.
type sampler struct {
	mu    sync.Mutex
	prev  map[string]runtime.Usage // by container id, or "" for the node
	last  map[string]runtime.Usage
	names map[string]runtime.ContainerSpec
	// eviction is the eviction loop's word to the node status and the pod
	// workers; it has its own lock.
	eviction *evictionState
}

func newSampler() *sampler {
	return &sampler{prev: map[string]runtime.Usage{}, last: map[string]runtime.Usage{}, names: map[string]runtime.ContainerSpec{},
		eviction: newEvictionState()}
}

// byPod sums one figure of the latest samples of each pod's containers,
// by pod and by container name.
func (s *sampler) byPod(figure func(runtime.Usage) uint64) podUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := podUsage{}
	for id, spec := range s.names {
		last, ok := s.last[id]
		if !ok {
			continue
		}
		uid := types.UID(spec.PodUID)
		u := out[uid]
		if u.byContainer == nil {
			u.byContainer = map[string]int64{}
		}
		n := int64(figure(last))
		u.total += n
		u.byContainer[spec.Name] += n
		out[uid] = u
	}
	return out
}

// sampleLoop samples usage every interval until ctx ends.
func (a *Agent) sampleLoop(ctx context.Context, every time.Duration) {
	for {
		a.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// sample reads every running container's usage in one request; the
// containers' pods are learnt from a listing only when one it does not
// know yet appears, so a node at rest costs one request a sample.
func (a *Agent) sample(ctx context.Context) {
	usage, err := a.cfg.Runtime.StatsAll(ctx)
	if err != nil {
		return
	}
	s := a.stats
	s.mu.Lock()
	unknown := false
	for id := range usage {
		if _, ok := s.names[id]; !ok {
			unknown = true
		}
	}
	s.mu.Unlock()
	if unknown {
		cs, err := a.cfg.Runtime.List(ctx)
		if err != nil {
			return
		}
		s.mu.Lock()
		for _, c := range cs {
			s.names[c.ID] = c.Spec
		}
		s.mu.Unlock()
	}
	seen := map[string]bool{"": true}
	record := func(id string, u runtime.Usage) {
		s.mu.Lock()
		if old, ok := s.last[id]; ok {
			s.prev[id] = old
		}
		s.last[id] = u
		s.mu.Unlock()
	}
	for id, u := range usage {
		seen[id] = true
		record(id, u)
	}
	if u, ok := nodeUsage(); ok {
		record("", u)
	}
	s.mu.Lock()
	for id := range s.last {
		if !seen[id] {
			delete(s.last, id)
			delete(s.prev, id)
		}
	}
	for id := range s.names {
		if !seen[id] {
			delete(s.names, id)
		}
	}
	s.mu.Unlock()
}

func (s *sampler) cpu(id string) *CPUStats {
	last, ok := s.last[id]
	if !ok {
		return nil
	}
	total := last.CPUNanos
	out := &CPUStats{Time: last.Time, UsageCoreNanoSeconds: &total}
	if prev, ok := s.prev[id]; ok && last.Time.After(prev.Time) && last.CPUNanos >= prev.CPUNanos {
		rate := uint64(float64(last.CPUNanos-prev.CPUNanos) / last.Time.Sub(prev.Time).Seconds())
		out.UsageNanoCores = &rate
	}
	return out
}

func (s *sampler) memory(id string) *MemoryStats {
	last, ok := s.last[id]
	if !ok {
		return nil
	}
	ws := last.MemoryWorkingSet
	return &MemoryStats{Time: last.Time, WorkingSetBytes: &ws}
}

// summary is the kubelet's /stats/summary from the latest samples.
func (a *Agent) summary() Summary {
	s := a.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Summary{Node: NodeStats{NodeName: a.cfg.NodeName, CPU: s.cpu(""), Memory: s.memory("")}, Pods: []PodStats{}}
	byPod := map[string]int{}
	for id, spec := range s.names {
		i, ok := byPod[spec.PodUID]
		if !ok {
			i = len(out.Pods)
			byPod[spec.PodUID] = i
			out.Pods = append(out.Pods, PodStats{PodRef: PodRef{Name: spec.PodName, Namespace: spec.PodNamespace, UID: spec.PodUID}})
		}
		out.Pods[i].Containers = append(out.Pods[i].Containers, ContainerStats{Name: spec.Name, CPU: s.cpu(id), Memory: s.memory(id)})
	}
	return out
}

func (a *Agent) statsSummary(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.summary())
}

// nodeUsage reads the machine's CPU time (/proc/stat, in USER_HZ ticks of
// 10ms) and working set (MemTotal less MemAvailable).
func nodeUsage() (runtime.Usage, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return runtime.Usage{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return runtime.Usage{}, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return runtime.Usage{}, false
	}
	var ticks uint64
	for i, v := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 7 { // guest time is counted in user already
			break
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	total, avail := memTotal(), memAvailable()
	ws := uint64(0)
	if total > avail {
		ws = uint64(total - avail)
	}
	return runtime.Usage{Time: time.Now(), CPUNanos: ticks * uint64(10*time.Millisecond), MemoryWorkingSet: ws}, true
}
