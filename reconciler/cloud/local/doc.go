// Package local is the cloud provider of bare machines: it makes Services
// of type LoadBalancer work without a cloud, as MetalLB's address pools and
// k3s' service load balancer do. A program registers it under its name:
//
//	cloud.Register(local.Name, local.New)
//	p, err := cloud.New(local.Name, cloud.Config{LBPool: []string{"10.99.0.0/24"}, Services: cached})
//
// Load balancers. With a pool (`keelson server --lb-pool`), each
// LoadBalancer service gets one address of the pool per IP family it has
// (spec.ipFamilies; IPv4 always, keelson's service network being IPv4; IPv6
// too for a service that lists it, when the pool has IPv6 addresses, a
// service requiring dual stack failing without), the lowest free one, or
// spec.loadBalancerIP when that is in the pool and free. A service keeps the address it has:
// the provider keeps no state of its own beyond what it gave out since it
// started, and reads the rest back from the services' status (Config.Services)
// after a restart. The node agents take the traffic of a service's addresses
// (package agent/proxy); an address on one of the nodes' networks is
// answered for by one node's agent (package agent/route), as MetalLB's layer
// 2 mode does, and any other must be routed to the nodes.
//
// Without a pool, a service's addresses are the nodes' own, as k3s'
// ServiceLB does: every node given to EnsureLoadBalancer (Ready and
// schedulable; for externalTrafficPolicy Local every node, the agents then
// sending traffic only to local endpoints) lists its ExternalIP addresses,
// or its InternalIP ones when it has none. A port and protocol can then be
// served by one service only: a second service asking for it, the later one
// by creationTimestamp then namespace/name, fails with ErrPortInUse.
//
// Instances: every node's machine exists while its agent heartbeats (the
// node lifecycle controller handles one that stops) and is never reported
// shut down; a node's provider ID is local://<node name>, and its zone and
// region are its own topology.kubernetes.io/zone and
// topology.kubernetes.io/region labels, as the agent's node labels set them.
// The node's addresses stay the agent's.
//
// Routes: none. Each agent routes the other nodes' pod CIDRs itself
// (host-gw, package agent/route).
package local
