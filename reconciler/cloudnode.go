package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

// eventDeletingNode is the cloud node lifecycle controller's, as Kubernetes
// names it.
const eventDeletingNode = "DeletingNode"

var shutdownTaint = corev1.Taint{Key: cloud.TaintShutdown, Effect: corev1.TaintEffectNoSchedule}

// cloudNodeController is Kubernetes' cloud node and cloud node lifecycle
// controllers in one: it gives each node what the provider knows of its
// machine (topology.kubernetes.io/zone and region labels, spec.providerID
// when empty, status.addresses when the provider has some) and removes the
// node.cloudprovider.kubernetes.io/uninitialized taint; a node that is not
// Ready gets the node.cloudprovider.kubernetes.io/shutdown:NoSchedule taint
// while its machine is shut down, and is deleted when its machine no longer
// exists. It asks again every resync. The agent writes its own Node too: the
// controller changes only these fields, compare-and-swap on a fresh copy.
type cloudNodeController struct {
	*Controller
	st     *store.Store
	nodes  cache.SharedIndexInformer
	rec    *Recorder
	inst   cloud.Instances
	resync time.Duration
}

func newCloudNodeController(st *store.Store, inf *Informers, rec *Recorder, inst cloud.Instances, resync time.Duration, queue QueueOptions, log *slog.Logger) *cloudNodeController {
	c := &cloudNodeController{st: st, nodes: inf.For(store.MustResource("nodes")), rec: rec, inst: inst, resync: resync}
	c.Controller = NewController("cloud-node", c, queue, log)
	c.nodes.AddEventHandler(c.Handler(SelfKeys))
	return c
}

// Reconcile brings one node in line with what the provider says of its
// machine. Only a node that is not Ready is asked about, as Kubernetes
// does: a Ready node's machine evidently runs.
func (c *cloudNodeController) Reconcile(ctx context.Context, name string) (Result, error) {
	n, ok := GetCached[*corev1.Node](c.nodes, "", name)
	if !ok || n.DeletionTimestamp != nil {
		return Result{}, nil
	}
	shutdown := false
	if nodeReadyStatus(n) != corev1.ConditionTrue {
		var err error
		if shutdown, err = c.inst.InstanceShutdown(ctx, n); err != nil {
			return Result{}, fmt.Errorf("node %s: is its machine shut down: %w", name, err)
		}
		if !shutdown {
			exists, err := c.inst.InstanceExists(ctx, n)
			if err != nil {
				return Result{}, fmt.Errorf("node %s: does its machine exist: %w", name, err)
			}
			if !exists {
				return Result{}, c.deleteNode(ctx, n)
			}
		}
	}
	md, err := c.inst.InstanceMetadata(ctx, n)
	if err != nil {
		return Result{}, fmt.Errorf("node %s: instance metadata: %w", name, err)
	}
	return Result{RequeueAfter: c.resync}, c.update(ctx, n, func(n *corev1.Node) bool {
		changed := applyInstanceMetadata(n, md)
		changed = setNodeTaint(n, shutdownTaint, shutdown) || changed
		return setNodeTaint(n, corev1.Taint{Key: cloud.TaintUninitialized}, false) || changed
	})
}

// applyInstanceMetadata writes md into n where it says something n lacks or
// has otherwise, and reports whether anything changed.
func applyInstanceMetadata(n *corev1.Node, md *cloud.InstanceMetadata) bool {
	if md == nil {
		return false
	}
	changed := false
	for label, v := range map[string]string{corev1.LabelTopologyZone: md.Zone, corev1.LabelTopologyRegion: md.Region} {
		if v != "" && n.Labels[label] != v {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[label], changed = v, true
		}
	}
	if n.Spec.ProviderID == "" && md.ProviderID != "" {
		n.Spec.ProviderID, changed = md.ProviderID, true
	}
	if len(md.NodeAddresses) > 0 {
		if want := withProviderAddresses(n.Status.Addresses, md.NodeAddresses); !equality.Semantic.DeepEqual(n.Status.Addresses, want) {
			n.Status.Addresses, changed = want, true
		}
	}
	return changed
}

// withProviderAddresses is the node's addresses with the provider's of
// every type but those the agent reports itself (InternalIP, Hostname),
// which stay the agent's: the two would otherwise overwrite each other
// with every status the agent posts.
func withProviderAddresses(have, provider []corev1.NodeAddress) []corev1.NodeAddress {
	agents := func(a corev1.NodeAddress) bool {
		return a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeHostName
	}
	out := slices.DeleteFunc(slices.Clone(have), func(a corev1.NodeAddress) bool { return !agents(a) })
	for _, a := range provider {
		if !agents(a) {
			out = append(out, a)
		}
	}
	return out
}

// setNodeTaint adds (on) or removes every taint of t's key (and effect,
// when t has one), reporting whether n changed.
func setNodeTaint(n *corev1.Node, t corev1.Taint, on bool) bool {
	match := func(x corev1.Taint) bool { return x.Key == t.Key && (t.Effect == "" || x.Effect == t.Effect) }
	has := slices.ContainsFunc(n.Spec.Taints, match)
	switch {
	case on && !has:
		n.Spec.Taints = append(n.Spec.Taints, t)
	case !on && has:
		n.Spec.Taints = slices.DeleteFunc(slices.Clone(n.Spec.Taints), match)
	default:
		return false
	}
	return true
}

// deleteNode deletes a node whose machine is gone, if it is still as seen
// (not Ready): one that changed meanwhile is looked at again.
func (c *cloudNodeController) deleteNode(ctx context.Context, n *corev1.Node) error {
	c.rec.Eventf(n, corev1.EventTypeNormal, eventDeletingNode, "Deleting node %s because it does not exist in the cloud provider", n.Name)
	uid, rv := n.UID, n.ResourceVersion
	err := c.st.Delete(ctx, store.MustResource("nodes"), "", n.Name, &metav1.Preconditions{UID: &uid, ResourceVersion: &rv})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("node %s: delete, its machine is gone: %w", n.Name, err)
	}
	return nil
}

// update applies mutate to the node and writes it when mutate reports a
// change, compare-and-swap, applying it again to a fresh read on a
// conflict with the agent or another controller.
func (c *cloudNodeController) update(ctx context.Context, n *corev1.Node, mutate func(*corev1.Node) bool) error {
	cur := n.DeepCopy()
	for attempt := 0; ; attempt++ {
		if !mutate(cur) {
			return nil
		}
		err := c.st.Update(ctx, cur)
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
			return nil
		case !errors.Is(err, store.ErrConflict) || attempt == 5:
			return fmt.Errorf("node %s: write cloud metadata: %w", n.Name, err)
		}
		cur = &corev1.Node{}
		if err := c.st.Get(ctx, "", n.Name, cur); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if cur.UID != n.UID {
			return nil
		}
	}
}
