package proxy

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Filter chains run just before destination NAT, so that they see the
// service's address, not the endpoint it would be rewritten to.
const filterPriority = nftables.ChainPriority(-110)

// skeleton is the fixed part of the table: base chains hooked into the
// kernel, the dispatch through the verdict maps, masquerading and the
// rejection of services with no endpoint.
func skeleton(masquerade bool) *fragment {
	f := newFragment()
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio nftables.ChainPriority, rules ...*rule) {
		f.chains[name] = &chainSpec{name: name, hook: &hookSpec{typ: typ, hook: *hook, prio: prio}, rules: rules}
	}
	base(chainNatPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, *nftables.ChainPriorityNATDest,
		newRule().jump(chainServices))
	base(chainNatOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, *nftables.ChainPriorityNATDest,
		newRule().jump(chainServices))
	base(chainNatPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, *nftables.ChainPriorityNATSource,
		newRule().jump(chainMasquerading))
	base(chainFilterForward, nftables.ChainTypeFilter, nftables.ChainHookForward, filterPriority,
		newRule().ctStateNew().jump(chainEndpointsCheck))
	base(chainFilterOutput, nftables.ChainTypeFilter, nftables.ChainHookOutput, filterPriority,
		newRule().ctStateNew().jump(chainEndpointsCheck))
	// Node ports are checked on input only: the node's own connection to a
	// node port meets filter-output before nat-output picks its endpoint
	// (externalTrafficPolicy Local sends it to another node's), while a node
	// port nothing DNATs is delivered here, through input, from anywhere.
	base(chainFilterInput, nftables.ChainTypeFilter, nftables.ChainHookInput, filterPriority,
		newRule().ctStateNew().jump(chainEndpointsCheck),
		newRule().ctStateNew().jump(chainNodePortsCheck))

	f.chain(chainServices,
		newRule().serviceVmap(mapServiceIPs),
		newRule().fibLocal("daddr").notLoopback().nodePortVmap(mapServiceNodePorts))
	f.chain(chainEndpointsCheck, newRule().serviceVmap(mapNoEndpointIPs))
	f.chain(chainNodePortsCheck, newRule().fibLocal("daddr").notLoopback().nodePortVmap(mapNoEndpointPorts))
	f.chain(chainReject,
		newRule().l4proto("TCP").rejectTCPReset(),
		newRule().rejectPortUnreachable())
	f.chain(chainMarkMasq, newRule().markMasq())

	var masq []*rule
	if masquerade {
		// Pod traffic to anywhere but another pod leaves with the node's
		// address; pod to pod, across nodes too, keeps the pod's.
		masq = append(masq, newRule().addrInSet("saddr", setPodCIDRs, false).addrInSet("daddr", setPodCIDRs, true).masquerade(false))
	}
	masq = append(masq, newRule().returnUnmarked(), newRule().clearMark(), newRule().masquerade(true))
	f.chain(chainMasquerading, masq...)
	return f
}

// staticSets are the verdict maps and the pod CIDR set of the skeleton.
func staticSets(t *nftables.Table) []*nftables.Set {
	vmap := func(name string, key nftables.SetDatatype) *nftables.Set {
		return &nftables.Set{Table: t, Name: name, IsMap: true, Concatenation: true, KeyType: key, DataType: nftables.TypeVerdict}
	}
	return []*nftables.Set{
		vmap(mapServiceIPs, serviceKeyType),
		vmap(mapServiceNodePorts, nodePortKeyType),
		vmap(mapNoEndpointIPs, serviceKeyType),
		vmap(mapNoEndpointPorts, nodePortKeyType),
		{Table: t, Name: setPodCIDRs, Interval: true, KeyType: nftables.TypeIPAddr},
	}
}

var (
	verdictDrop   = verdict{kind: expr.VerdictDrop}
	verdictReject = verdict{kind: expr.VerdictGoto, chain: chainReject}
)

func gotoVerdict(chain string) verdict { return verdict{kind: expr.VerdictGoto, chain: chain} }

// addPort adds what one service port wants to f.
func addPort(f *fragment, sp *servicePort, eps []endpoint) {
	cluster, local := categorize(eps)
	proto := protoNumbers[sp.proto]
	svcChain := portChainName(prefixService, sp)
	localChain := portChainName(prefixLocal, sp)
	hasAny := len(cluster) > 0

	internal, hasInternal := svcChain, hasAny
	if sp.internalLocal {
		internal, hasInternal = localChain, len(local) > 0
	}
	key := serviceKey(sp.ip, proto, sp.port)
	switch {
	case hasInternal:
		f.elem(mapServiceIPs, key, gotoVerdict(internal))
	case hasAny:
		// internalTrafficPolicy Local with no endpoint on this node.
		f.elem(mapNoEndpointIPs, key, verdictDrop)
	default:
		f.elem(mapNoEndpointIPs, key, verdictReject)
	}
	if sp.external() {
		addExternal(f, sp, proto, hasAny, len(local) > 0, svcChain, localChain)
	}
	if !hasAny {
		return
	}

	// Endpoint chains, for every endpoint either policy uses.
	seen := map[string]bool{}
	for _, ep := range append(append([]endpoint(nil), cluster...), local...) {
		name := endpointChainName(sp, ep)
		if seen[name] {
			continue
		}
		seen[name] = true
		f.chain(name, endpointRules(sp, ep)...)
		if sp.affinity > 0 {
			f.sets[affinitySetName(sp, ep)] = setSpec{affinity: sp.affinity}
		}
	}
	addPolicy(f, sp, svcChain, cluster, internal == svcChain)
	if len(local) > 0 && (sp.internalLocal || (sp.externalLocal && sp.external())) {
		addPolicy(f, sp, localChain, local, internal == localChain)
	}
}

// addExternal adds the map elements of the port's node port and load
// balancer addresses, and their external chain.
func addExternal(f *fragment, sp *servicePort, proto uint8, hasAny, hasLocal bool, svcChain, localChain string) {
	type entry struct {
		vmap, none string
		key        []byte
	}
	var entries []entry
	if sp.nodePort != 0 {
		entries = append(entries, entry{mapServiceNodePorts, mapNoEndpointPorts, nodePortKey(proto, sp.nodePort)})
	}
	for _, ip := range sp.loadBalancerIPs {
		entries = append(entries, entry{mapServiceIPs, mapNoEndpointIPs, serviceKey(ip, proto, sp.port)})
	}
	if !hasAny {
		for _, e := range entries {
			f.elem(e.none, e.key, verdictReject)
		}
		return
	}
	ext := portChainName(prefixExternal, sp)
	for _, e := range entries {
		f.elem(e.vmap, e.key, gotoVerdict(ext))
	}
	if !sp.externalLocal {
		// The endpoint may be on another node: masquerade so the reply
		// comes back through this one.
		f.chain(ext, newRule().jump(chainMarkMasq), newRule().gotoChain(svcChain))
		return
	}
	// externalTrafficPolicy Local keeps the client's address and uses only
	// this node's endpoints, except for traffic from pods and from the node
	// itself, which goes anywhere (the node's own address must be
	// masqueraded, as it would not be routed back otherwise).
	rules := []*rule{
		newRule().addrInSet("saddr", setPodCIDRs, false).gotoChain(svcChain),
		newRule().fibLocal("saddr").jump(chainMarkMasq),
		newRule().fibLocal("saddr").gotoChain(svcChain),
	}
	switch {
	case hasLocal:
		rules = append(rules, newRule().gotoChain(localChain))
	default:
		// No endpoint here: what comes from outside is dropped, as in
		// Kubernetes. A node port is also checked on input (see
		// skeleton); a load balancer address left to itself would be
		// routed on (a pool routed to the nodes loops back) or reach a
		// socket of the node's.
		if sp.nodePort != 0 {
			f.elem(mapNoEndpointPorts, nodePortKey(proto, sp.nodePort), verdictDrop)
		}
		rules = append(rules, newRule().drop())
	}
	f.chain(ext, rules...)
}

// addPolicy adds a chain that picks one of eps, with its pick map:
// masquerade for clients outside the pod network (on the cluster IP's own
// chain), affinity, then a random spread.
func addPolicy(f *fragment, sp *servicePort, chain string, eps []endpoint, internal bool) {
	var rules []*rule
	if internal {
		rules = append(rules, newRule().daddr(sp.ip).l4proto(sp.proto).dport(sp.port).
			addrInSet("saddr", setPodCIDRs, true).jump(chainMarkMasq))
	}
	pick := prefixPick + chain
	f.sets[pick] = setSpec{}
	for i, ep := range eps {
		target := endpointChainName(sp, ep)
		f.elem(pick, numgenKey(i), gotoVerdict(target))
		if sp.affinity > 0 {
			rules = append(rules, newRule().addrInSet("saddr", affinitySetName(sp, ep), false).gotoChain(target))
		}
	}
	f.chain(chain, append(rules, newRule().pick(pick, len(eps)))...)
}

// endpointRules DNAT to one endpoint; a pod reaching itself through its
// service is masqueraded, or its reply would not come back through the node.
func endpointRules(sp *servicePort, ep endpoint) []*rule {
	rules := []*rule{newRule().saddr(ep.ip).jump(chainMarkMasq)}
	if sp.affinity > 0 {
		rules = append(rules, newRule().updateAffinity(affinitySetName(sp, ep)))
	}
	return append(rules, newRule().l4proto(sp.proto).dnat(netip.AddrPortFrom(ep.ip, ep.port)))
}
