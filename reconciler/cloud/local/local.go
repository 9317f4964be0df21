package local

import (
	"context"
	"errors"
	"log/slog"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/reconciler/cloud"
)

// Name is the name the provider is registered under.
const Name = "local"

// Errors of the load balancers, wrapped with the details.
var (
	// ErrPoolExhausted: no free address is left in the pool.
	ErrPoolExhausted = errors.New("load balancer pool exhausted")
	// ErrNotInPool: spec.loadBalancerIP is not an address of the pool, or
	// not an address at all.
	ErrNotInPool = errors.New("address not in the load balancer pool")
	// ErrAddressInUse: spec.loadBalancerIP is another service's.
	ErrAddressInUse = errors.New("load balancer address in use")
	// ErrPortInUse: without a pool, another service serves the port on
	// the nodes' addresses.
	ErrPortInUse = errors.New("port in use on the nodes' addresses")
	// ErrNoNodeAddress: without a pool, no node given has an address.
	ErrNoNodeAddress = errors.New("no node address for the load balancer")
)

// New returns the local provider. Errors: an entry of cfg.LBPool that is
// neither a CIDR nor a range of addresses.
func New(cfg cloud.Config) (cloud.Interface, error) {
	p, err := parsePool(cfg.LBPool)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &provider{lb: newLoadBalancer(p, cfg.Services, log.With("cloud", Name))}, nil
}

type provider struct{ lb *loadBalancer }

func (p *provider) Name() string                             { return Name }
func (p *provider) LoadBalancer() (cloud.LoadBalancer, bool) { return p.lb, true }
func (p *provider) Instances() (cloud.Instances, bool)       { return instances{}, true }
func (p *provider) Routes() (cloud.Routes, bool)             { return nil, false }

type instances struct{}

func (instances) InstanceExists(context.Context, *corev1.Node) (bool, error)   { return true, nil }
func (instances) InstanceShutdown(context.Context, *corev1.Node) (bool, error) { return false, nil }

func (instances) InstanceMetadata(_ context.Context, n *corev1.Node) (*cloud.InstanceMetadata, error) {
	return &cloud.InstanceMetadata{
		ProviderID: Name + "://" + n.Name,
		Zone:       n.Labels[corev1.LabelTopologyZone],
		Region:     n.Labels[corev1.LabelTopologyRegion],
	}, nil
}
