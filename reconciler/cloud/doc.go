// Package cloud is keelson's cloud provider interface, modelled on
// Kubernetes' k8s.io/cloud-provider: what the machines keelson runs on can
// do beyond running containers. The control plane's cloud controllers
// (package reconciler) drive it:
//
//   - the service load balancer controller gives Services of type
//     LoadBalancer their load balancer (LoadBalancer) and writes its
//     addresses to status.loadBalancer;
//   - the cloud node controller labels nodes with their zone and region,
//     sets spec.providerID, taints nodes whose machine is shut down and
//     deletes those whose machine is gone (Instances);
//   - the route controller makes a route to each node's pod CIDR (Routes).
//
// `keelson server --cloud-provider NAME` picks a provider by the name it is
// registered under; "none" (this package's, with nothing) is the default,
// "local" (package reconciler/cloud/local) serves LoadBalancer Services on
// bare machines from an address pool (--lb-pool) or the nodes' own
// addresses.
//
// # Writing a provider
//
// A provider implements Interface, returning false for the parts it does
// not offer, and exports a Factory; the program that runs the control plane
// registers it under the provider's name by hand (no package registers
// itself from an init function). Methods are called again and again (after errors, on every change,
// after a restart): they must be idempotent, and they must not change the
// Services and Nodes they are given.
//
//	package acme
//
//	import (
//		"context"
//
//		corev1 "k8s.io/api/core/v1"
//
//		"github.com/keelson/keelson/reconciler/cloud"
//	)
//
//	func New(cfg cloud.Config) (cloud.Interface, error) {
//		return &provider{api: newClient()}, nil
//	}
//
//	type provider struct{ api *client }
//
//	func (p *provider) Name() string                             { return "acme" }
//	func (p *provider) LoadBalancer() (cloud.LoadBalancer, bool) { return p, true }
//	func (p *provider) Instances() (cloud.Instances, bool)       { return nil, false }
//	func (p *provider) Routes() (cloud.Routes, bool)             { return nil, false }
//
//	func (p *provider) EnsureLoadBalancer(ctx context.Context, svc *corev1.Service, nodes []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
//		ip, err := p.api.ensure(ctx, string(svc.UID), svc.Spec.Ports, nodes)
//		if err != nil {
//			return nil, err
//		}
//		return &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}, nil
//	}
//
//	// … GetLoadBalancer, UpdateLoadBalancer, EnsureLoadBalancerDeleted
//
// and in the program, once, before its flags are parsed (cmd/keelson
// registers local so, beside the none every registry has):
//
//	cloud.Register("acme", acme.New)
//	p, err := cloud.New("acme", cloud.Config{LBPool: pool})
//
// cloud.New with an unknown name fails with ErrUnknownProvider and lists the
// registered names.
package cloud
