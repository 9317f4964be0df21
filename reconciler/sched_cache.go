package reconciler

import (
	"maps"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Default requests the scores assume for containers that request nothing, as
// Kubernetes does, so that such pods still spread instead of piling up.
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 << 20
)

// resources is what a pod requests or a node offers, in the units the
// filters compare: millicores, bytes, bytes, pods.
type resources struct {
	milliCPU, memory, ephemeral, pods int64
}

func (r *resources) add(o resources, sign int64) {
	r.milliCPU += sign * o.milliCPU
	r.memory += sign * o.memory
	r.ephemeral += sign * o.ephemeral
	r.pods += sign * o.pods
}

func resourcesOf(l corev1.ResourceList, pods int64) resources {
	return resources{
		milliCPU:  l.Cpu().MilliValue(),
		memory:    l.Memory().Value(),
		ephemeral: l.StorageEphemeral().Value(),
		pods:      pods,
	}
}

type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

// podInfo is a pod as the scheduler accounts for it on its node.
type podInfo struct {
	pod     *corev1.Pod
	node    string
	req     resources // as the resource filter counts them
	nonzero resources // as the scores count them
	ports   []hostPort
	owner   types.UID
	anti    []*podTerm // required anti-affinity terms
	assumed bool
}

func newPodInfo(p *corev1.Pod, node string) *podInfo {
	req := resourcesOf(resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}), 1)
	nz := resourcesOf(resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(defaultMilliCPURequest, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(defaultMemoryRequest, resource.BinarySI),
		},
	}), 1)
	pi := &podInfo{pod: p, node: node, req: req, nonzero: nz, anti: requiredAntiAffinity(p)}
	if ref := controllerRef(p); ref != "" {
		pi.owner = ref
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.HostPort > 0 {
				pi.ports = append(pi.ports, hostPort{ip: cp.HostIP, protocol: protocolOf(cp.Protocol), port: cp.HostPort})
			}
		}
	}
	return pi
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func controllerRef(p *corev1.Pod) types.UID {
	for _, r := range p.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			return r.UID
		}
	}
	return ""
}

// nodeInfo is one node and what is bound (or assumed bound) to it.
type nodeInfo struct {
	name string
	node *corev1.Node // nil while pods name a node that is not registered
	// ready, unschedulable, taints and zone are the node's, kept here so
	// that a search over thousands of nodes reads these small records and
	// not each Node object.
	ready         bool // the node's Ready condition is True
	unschedulable bool
	taints        []corev1.Taint
	zone          string
	allocatable   resources
	images        map[string]int64 // image name → size
	pods          map[types.UID]*podInfo
	req           resources
	nonzero       resources
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{name: name, pods: map[types.UID]*podInfo{}}
}

func (n *nodeInfo) setNode(node *corev1.Node) {
	n.node = node
	if node == nil {
		return
	}
	n.ready = nodeReadyStatus(node) == corev1.ConditionTrue
	n.unschedulable, n.taints, n.zone = node.Spec.Unschedulable, node.Spec.Taints, node.Labels[zoneLabel]
	n.allocatable = resourcesOf(node.Status.Allocatable, node.Status.Allocatable.Pods().Value())
	n.images = nil
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			if n.images == nil {
				n.images = map[string]int64{}
			}
			n.images[normalizeImage(name)] = img.SizeBytes
		}
	}
}

func (n *nodeInfo) addPod(pi *podInfo, sign int64) {
	n.req.add(pi.req, sign)
	n.nonzero.add(pi.nonzero, sign)
	if sign > 0 {
		n.pods[pi.pod.UID] = pi
	} else {
		delete(n.pods, pi.pod.UID)
	}
}

// portInUse reports whether a bound pod holds the host port (0.0.0.0
// conflicts with every address).
func (n *nodeInfo) portInUse(hp hostPort) bool {
	for _, pi := range n.pods {
		for _, o := range pi.ports {
			if o.port == hp.port && o.protocol == hp.protocol && (o.ip == hp.ip || anyIP(o.ip) || anyIP(hp.ip)) {
				return true
			}
		}
	}
	return false
}

func anyIP(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// normalizeImage makes "nginx" and "docker.io/library/nginx:latest" the same.
func normalizeImage(name string) string {
	if i := strings.LastIndex(name, "@"); i >= 0 {
		return name
	}
	if !strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		name += ":latest"
	}
	if !strings.Contains(name, "/") {
		name = "library/" + name
	}
	first := name[:strings.Index(name, "/")]
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		name = "docker.io/" + name
	}
	return name
}

// schedCache is the scheduler's in-memory snapshot: nodes and the pods bound
// or assumed to them, kept current by informer events. Decisions take mu, so
// two pods are never placed on the same free capacity.
type schedCache struct {
	mu    sync.Mutex
	nodes map[string]*nodeInfo
	order []*nodeInfo // registered nodes, in a stable order for the round robin
	pods  map[types.UID]*podInfo
	next  int // where the next search starts
	// byLabel indexes the bound pods by each "key=value" of their labels.
	byLabel map[string]map[types.UID]*podInfo
	// anti groups the bound pods' required anti-affinity terms.
	anti map[string]*antiGroup
	// owned counts the bound pods of each controller per node: one small
	// map to read when spreading a controller's pods, rather than a map
	// on every node searched.
	owned map[types.UID]map[*nodeInfo]int
	// nsLabels returns a namespace's labels, for namespace selectors.
	nsLabels func(string) labels.Set
}

func newSchedCache() *schedCache {
	return &schedCache{nodes: map[string]*nodeInfo{}, pods: map[types.UID]*podInfo{},
		byLabel: map[string]map[types.UID]*podInfo{}, anti: map[string]*antiGroup{}, owned: map[types.UID]map[*nodeInfo]int{},
		nsLabels: func(string) labels.Set { return nil }}
}

func (c *schedCache) nodeLocked(name string) *nodeInfo {
	n := c.nodes[name]
	if n == nil {
		n = newNodeInfo(name)
		c.nodes[name] = n
	}
	return n
}

// setNode records a node added or updated; nil node with its name deletes it.
func (c *schedCache) setNode(name string, node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(name)
	registered := n.node != nil
	n.setNode(node)
	switch {
	case node != nil && !registered:
		c.order = append(c.order, n)
	case node == nil && registered:
		for i, o := range c.order {
			if o == n {
				c.order = append(c.order[:i], c.order[i+1:]...)
				break
			}
		}
		if len(n.pods) == 0 {
			delete(c.nodes, name)
		}
	}
}

// occupies reports whether a pod takes room on its node: bound and not finished.
func occupies(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// setPod records a pod's current state (nil: deleted); it replaces an
// assumption about the same pod.
func (c *schedCache) setPod(uid types.UID, p *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pi := c.pods[uid]; pi != nil && p != nil && occupies(p) && samePlacement(pi, p) {
		// A status write, or the binding it assumed: what the pod takes
		// on its node is unchanged.
		pi.pod, pi.assumed = p, false
		return
	}
	c.removeLocked(uid)
	if p != nil && occupies(p) {
		c.addLocked(newPodInfo(p, p.Spec.NodeName))
	}
}

// samePlacement reports whether pod p, an update of the pod pi accounts
// for, takes the same room and counts the same way on the same node: same
// node, spec (metadata.generation moves with any change of it), labels and
// controller.
func samePlacement(pi *podInfo, p *corev1.Pod) bool {
	return pi.node == p.Spec.NodeName && pi.pod.Generation == p.Generation &&
		maps.Equal(pi.pod.Labels, p.Labels) && pi.owner == controllerRef(p)
}

func (c *schedCache) addLocked(pi *podInfo) {
	n := c.nodeLocked(pi.node)
	n.addPod(pi, 1)
	c.pods[pi.pod.UID] = pi
	c.indexLocked(pi, 1)
	c.countOwnedLocked(pi, n, 1)
}

// countOwnedLocked adds (sign 1) or removes (-1) a pod from its
// controller's count on node n.
func (c *schedCache) countOwnedLocked(pi *podInfo, n *nodeInfo, sign int) {
	if pi.owner == "" {
		return
	}
	m := c.owned[pi.owner]
	if m == nil {
		if sign < 0 {
			return
		}
		m = map[*nodeInfo]int{}
		c.owned[pi.owner] = m
	}
	if m[n] += sign; m[n] <= 0 {
		delete(m, n)
		if len(m) == 0 {
			delete(c.owned, pi.owner)
		}
	}
}

// indexLocked adds (sign 1) or removes (-1) a pod from the label index and
// the anti-affinity groups.
func (c *schedCache) indexLocked(pi *podInfo, sign int) {
	uid := pi.pod.UID
	for k, v := range pi.pod.Labels {
		key := k + "=" + v
		if sign > 0 {
			if c.byLabel[key] == nil {
				c.byLabel[key] = map[types.UID]*podInfo{}
			}
			c.byLabel[key][uid] = pi
		} else if m := c.byLabel[key]; m != nil {
			delete(m, uid)
			if len(m) == 0 {
				delete(c.byLabel, key)
			}
		}
	}
	for _, t := range pi.anti {
		key := t.groupKey
		g := c.anti[key]
		if g == nil {
			if sign < 0 {
				continue
			}
			g = &antiGroup{term: t, nodes: map[string]int{}}
			c.anti[key] = g
		}
		g.nodes[pi.node] += sign
		if g.nodes[pi.node] <= 0 {
			delete(g.nodes, pi.node)
		}
		if len(g.nodes) == 0 {
			delete(c.anti, key)
		}
	}
}

func (c *schedCache) removeLocked(uid types.UID) {
	pi := c.pods[uid]
	if pi == nil {
		return
	}
	delete(c.pods, uid)
	c.indexLocked(pi, -1)
	n := c.nodes[pi.node]
	if n == nil {
		return
	}
	n.addPod(pi, -1)
	c.countOwnedLocked(pi, n, -1)
	if n.node == nil && len(n.pods) == 0 {
		delete(c.nodes, pi.node)
	}
}

// placed reports whether the cache holds the pod as bound or assumed.
func (c *schedCache) placed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods[uid] != nil
}

// forget drops an assumption whose binding failed.
func (c *schedCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pi := c.pods[uid]; pi != nil && pi.assumed {
		c.removeLocked(uid)
	}
}
