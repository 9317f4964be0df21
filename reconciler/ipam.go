package reconciler

import (
	"fmt"
	"math/big"
	"net/netip"
	"sync"
)

// cidrAllocator hands out equal subnets of the cluster CIDR, one per node.
type cidrAllocator struct {
	mu     sync.Mutex
	base   netip.Prefix
	bits   int // mask size of each subnet
	count  int
	used   map[int]string // subnet index → node
	byNode map[string]int
	next   int
}

func newCIDRAllocator(cluster string, maskSize int) (*cidrAllocator, error) {
	p, err := netip.ParsePrefix(cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR %q: %w", cluster, err)
	}
	p = p.Masked()
	if maskSize < p.Bits() || maskSize > p.Addr().BitLen() || maskSize-p.Bits() > 24 {
		return nil, fmt.Errorf("node CIDR mask size /%d does not fit cluster CIDR %s", maskSize, p)
	}
	return &cidrAllocator{base: p, bits: maskSize, count: 1 << (maskSize - p.Bits()),
		used: map[int]string{}, byNode: map[string]int{}}, nil
}

func (a *cidrAllocator) subnet(i int) netip.Prefix {
	n := new(big.Int).SetBytes(a.base.Addr().AsSlice())
	n.Add(n, new(big.Int).Lsh(big.NewInt(int64(i)), uint(a.base.Addr().BitLen()-a.bits)))
	b := n.FillBytes(make([]byte, len(a.base.Addr().AsSlice())))
	addr, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(addr, a.bits)
}

// index returns the subnet index of cidr, or false when it is not one of ours.
func (a *cidrAllocator) index(cidr string) (int, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p.Bits() != a.bits || !a.base.Contains(p.Addr()) {
		return 0, false
	}
	off := new(big.Int).Sub(new(big.Int).SetBytes(p.Masked().Addr().AsSlice()), new(big.Int).SetBytes(a.base.Addr().AsSlice()))
	return int(off.Rsh(off, uint(a.base.Addr().BitLen()-a.bits)).Int64()), true
}

// occupy records a CIDR a node already has (set by its agent or earlier).
// When another node holds the same subnet, it keeps it and occupy returns
// that node's name.
func (a *cidrAllocator) occupy(node, cidr string) (conflict string) {
	i, ok := a.index(cidr)
	if !ok {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if holder, taken := a.used[i]; taken && holder != node {
		return holder
	}
	if old, had := a.byNode[node]; had && old != i {
		delete(a.used, old)
	}
	a.used[i] = node
	a.byNode[node] = i
	return ""
}

// allocate returns the node's subnet, taking a free one if it has none.
func (a *cidrAllocator) allocate(node string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.byNode[node]; ok {
		return a.subnet(i).String(), nil
	}
	for k := range a.count {
		i := (a.next + k) % a.count
		if _, taken := a.used[i]; !taken {
			a.used[i], a.byNode[node], a.next = node, i, i+1
			return a.subnet(i).String(), nil
		}
	}
	return "", fmt.Errorf("no free /%d left in cluster CIDR %s for node %s", a.bits, a.base, node)
}

// release frees the node's subnet.
func (a *cidrAllocator) release(node string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.byNode[node]; ok {
		delete(a.byNode, node)
		if a.used[i] == node {
			delete(a.used, i)
		}
		if a.next == i+1 {
			// The last subnet handed out comes back (its write lost a race):
			// hand it out again, so a node's CIDR does not depend on races.
			a.next = i
		}
	}
}
