package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The table's fixed objects.
const (
	chainNatPrerouting  = "nat-prerouting"
	chainNatOutput      = "nat-output"
	chainNatPostrouting = "nat-postrouting"
	chainFilterInput    = "filter-input"
	chainFilterForward  = "filter-forward"
	chainFilterOutput   = "filter-output"
	chainServices       = "services"
	chainMasquerading   = "masquerading"
	chainMarkMasq       = "mark-for-masquerade"
	chainEndpointsCheck = "endpoints-check"
	chainNodePortsCheck = "nodeport-endpoints-check"
	chainReject         = "reject-chain"

	mapServiceIPs       = "service-ips"
	mapServiceNodePorts = "service-nodeports"
	mapNoEndpointIPs    = "no-endpoint-services"
	mapNoEndpointPorts  = "no-endpoint-nodeports"
	setPodCIDRs         = "pod-cidrs"
)

// Prefixes of the chains and sets made per service port and endpoint. Each
// name carries the port's namespace/name/protocol/portname, so that `nft list
// table ip keelson` reads, and a short hash, so that names that differ in one
// character still look different.
const (
	prefixService  = "svc-"
	prefixLocal    = "local-"
	prefixExternal = "ext-"
	prefixEndpoint = "ep-"
	prefixAffinity = "aff-"
	// prefixPick names a policy chain's pick map: "pick-" and the chain's
	// name.
	prefixPick = "pick-"
)

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:8]
}

func portChainName(prefix string, sp *servicePort) string {
	id := sp.id()
	return prefix + shortHash(id) + "-" + id
}

func endpointID(sp *servicePort, ep endpoint) string {
	return sp.id() + "__" + ep.ip.String() + "/" + strconv.Itoa(int(ep.port))
}

func endpointChainName(sp *servicePort, ep endpoint) string {
	id := endpointID(sp, ep)
	return prefixEndpoint + shortHash(id) + "-" + id
}

// affinitySetName names an endpoint's affinity set. The timeout is part of
// the hash, so that a new timeout makes a new set rather than changing one
// that rules refer to.
func affinitySetName(sp *servicePort, ep endpoint) string {
	id := endpointID(sp, ep)
	return prefixAffinity + shortHash(fmt.Sprintf("%s@%d", id, sp.affinity)) + "-" + id
}

// parseEndpointChain reads the protocol and address of an endpoint chain
// back from its name: a chain found in the kernel after a restart says which
// backend it led to, so the flows to that backend can be cleared when it goes.
func parseEndpointChain(name string) (corev1.Protocol, netip.AddrPort, bool) {
	if !strings.HasPrefix(name, prefixEndpoint) {
		return "", netip.AddrPort{}, false
	}
	svc, ep, ok := strings.Cut(name, "__")
	if !ok {
		return "", netip.AddrPort{}, false
	}
	parts := strings.Split(svc, "/")
	if len(parts) != 4 {
		return "", netip.AddrPort{}, false
	}
	ip, port, ok := strings.Cut(ep, "/")
	if !ok {
		return "", netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(ip)
	n, err2 := strconv.ParseUint(port, 10, 16)
	if err != nil || err2 != nil {
		return "", netip.AddrPort{}, false
	}
	return corev1.Protocol(strings.ToUpper(parts[2])), netip.AddrPortFrom(addr, uint16(n)), true
}
