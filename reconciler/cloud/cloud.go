package cloud

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
)

// Well-known names the cloud controllers use, as Kubernetes' cloud provider
// library spells them.
const (
	// LoadBalancerCleanupFinalizer holds a Service whose load balancer the
	// service load balancer controller made, until it has deleted it.
	LoadBalancerCleanupFinalizer = "service.kubernetes.io/load-balancer-cleanup"
	// TaintShutdown (NoSchedule) marks a node that is not Ready and whose
	// machine the provider says is shut down.
	TaintShutdown = "node.cloudprovider.kubernetes.io/shutdown"
	// TaintUninitialized marks a node a kubelet registered for an external
	// cloud provider; the cloud node controller removes it once it has
	// applied the node's metadata.
	TaintUninitialized = "node.cloudprovider.kubernetes.io/uninitialized"
)

// Interface is a cloud provider: what the machines keelson runs on offer
// beyond themselves. Each part is optional: ok false says the provider has
// none, and the controller that would use it does not run (the service load
// balancer controller runs anyway, to tell LoadBalancer services that
// nothing gives them an address).
type Interface interface {
	// Name is the name the provider is registered under.
	Name() string
	// LoadBalancer returns the provider's load balancers.
	LoadBalancer() (LoadBalancer, bool)
	// Instances returns what the provider knows of the nodes' machines.
	Instances() (Instances, bool)
	// Routes returns the provider's routes to the nodes' pod CIDRs.
	Routes() (Routes, bool)
}

// LoadBalancer makes load balancers for Services of type LoadBalancer. The
// Services and Nodes it is given are shared with the controller's cache:
// read them, never change them. Every method is idempotent: the controller
// calls it again after an error, with back-off, and after a restart.
type LoadBalancer interface {
	// GetLoadBalancer returns the status of the service's load balancer;
	// exists is false when it has none.
	GetLoadBalancer(ctx context.Context, svc *corev1.Service) (status *corev1.LoadBalancerStatus, exists bool, err error)
	// EnsureLoadBalancer makes the service's load balancer, or brings the
	// one it has up to date with the service and nodes, and returns its
	// status (written to the service's status.loadBalancer). nodes are the
	// Ready, schedulable nodes not labelled
	// node.kubernetes.io/exclude-from-external-load-balancers; for a service
	// of externalTrafficPolicy Local every node not so labelled.
	EnsureLoadBalancer(ctx context.Context, svc *corev1.Service, nodes []*corev1.Node) (*corev1.LoadBalancerStatus, error)
	// UpdateLoadBalancer points the service's existing load balancer at a
	// changed set of nodes (chosen as for EnsureLoadBalancer).
	UpdateLoadBalancer(ctx context.Context, svc *corev1.Service, nodes []*corev1.Node) error
	// EnsureLoadBalancerDeleted deletes the service's load balancer; one
	// that does not exist is not an error.
	EnsureLoadBalancerDeleted(ctx context.Context, svc *corev1.Service) error
}

// Instances tells what the provider knows of the machine behind a node.
type Instances interface {
	// InstanceExists reports whether the node's machine still exists; the
	// cloud node controller deletes a node that is not Ready and whose
	// machine does not.
	InstanceExists(ctx context.Context, node *corev1.Node) (bool, error)
	// InstanceShutdown reports whether the node's machine is shut down; the
	// cloud node controller taints such a node, when not Ready, with
	// TaintShutdown.
	InstanceShutdown(ctx context.Context, node *corev1.Node) (bool, error)
	// InstanceMetadata returns what the provider knows of the node's
	// machine.
	InstanceMetadata(ctx context.Context, node *corev1.Node) (*InstanceMetadata, error)
}

// InstanceMetadata is what a provider knows of a node's machine. Empty
// fields leave the node's own as they are.
type InstanceMetadata struct {
	// ProviderID is written to the node's spec.providerID when that is
	// empty, as "<provider>://<id>".
	ProviderID string
	// NodeAddresses replace the node's status.addresses when not empty.
	NodeAddresses []corev1.NodeAddress
	// Zone and Region become the node's topology.kubernetes.io/zone and
	// topology.kubernetes.io/region labels.
	Zone, Region string
}

// Routes makes the routes that carry traffic for a node's pod CIDR to that
// node.
type Routes interface {
	// ListRoutes lists the routes the provider made for the cluster. The
	// route controller deletes those, within the cluster CIDR, whose node
	// is gone or no longer has the route's CIDR.
	ListRoutes(ctx context.Context) ([]Route, error)
	// CreateRoute makes a route; nameHint (the node's name) may name it.
	CreateRoute(ctx context.Context, nameHint string, r Route) error
	// DeleteRoute deletes a route ListRoutes listed.
	DeleteRoute(ctx context.Context, r Route) error
}

// Route sends the traffic for DestinationCIDR to node TargetNode.
type Route struct {
	// Name is the provider's name of the route; empty when creating one.
	Name string
	// TargetNode is the name of the node the traffic goes to.
	TargetNode string
	// DestinationCIDR is the node's pod CIDR, as 10.42.3.0/24.
	DestinationCIDR string
}

// Config is what a provider's Factory is given.
type Config struct {
	// LBPool is the addresses load balancers get (`keelson server
	// --lb-pool`): CIDRs as 10.99.0.0/24 and ranges as
	// 10.99.0.10-10.99.0.20. A provider that takes its addresses elsewhere
	// ignores it; empty, the local provider uses the nodes' addresses.
	LBPool []string
	// Services, when set, lists every Service the controllers know (their
	// cache), for a provider that keeps its state in the services' status
	// rather than elsewhere. The services are shared with the cache: read
	// them, never change them.
	Services func() []*corev1.Service
	// Logger receives the provider's logs; slog.Default when nil.
	Logger *slog.Logger
}

// Factory builds a provider from its configuration; an error says what in
// cfg is wrong.
type Factory func(cfg Config) (Interface, error)
