package proxy

import (
	"encoding/hex"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// hookSpec is what makes a chain a base chain.
type hookSpec struct {
	typ  nftables.ChainType
	hook nftables.ChainHook
	prio nftables.ChainPriority
}

// chainSpec is a chain as it should be.
type chainSpec struct {
	name  string
	hook  *hookSpec
	rules []*rule
}

func (c *chainSpec) digests() []string {
	d := make([]string, len(c.rules))
	for i, r := range c.rules {
		d[i] = r.digest()
	}
	return d
}

// verdict is the value of a verdict map element.
type verdict struct {
	kind  expr.VerdictKind
	chain string
}

func (v verdict) String() string {
	switch v.kind {
	case expr.VerdictGoto:
		return "goto " + v.chain
	case expr.VerdictJump:
		return "jump " + v.chain
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictAccept:
		return "accept"
	}
	return "verdict?"
}

// elemKey is a map element's key as a string (hex), so keys can index maps.
type elemKey string

func keyOf(b []byte) elemKey { return elemKey(hex.EncodeToString(b)) }

func (k elemKey) bytes() []byte { b, _ := hex.DecodeString(string(k)); return b }

// setSpec is a set or map made per service port: an endpoint's affinity
// set (client addresses, with a timeout), or a pick map (numgen result to
// endpoint chain).
type setSpec struct {
	// affinity is the affinity set's timeout in seconds; 0 for a pick map.
	affinity int32
}

// fragment is the part of the table one owner wants: the fixed skeleton, or
// one service with all its ports. Fragments of different owners never share
// a chain, a set or a map element.
type fragment struct {
	chains map[string]*chainSpec
	sets   map[string]setSpec
	elems  map[string]map[elemKey]verdict
}

func newFragment() *fragment {
	return &fragment{chains: map[string]*chainSpec{}, sets: map[string]setSpec{}, elems: map[string]map[elemKey]verdict{}}
}

func (f *fragment) empty() bool {
	return len(f.chains) == 0 && len(f.sets) == 0 && len(f.elems) == 0
}

func (f *fragment) chain(name string, rules ...*rule) {
	f.chains[name] = &chainSpec{name: name, rules: rules}
}

func (f *fragment) elem(m string, key []byte, v verdict) {
	if f.elems[m] == nil {
		f.elems[m] = map[elemKey]verdict{}
	}
	f.elems[m][keyOf(key)] = v
}

// merge adds o's objects to f (for a whole-table reconcile).
func (f *fragment) merge(o *fragment) {
	for n, c := range o.chains {
		f.chains[n] = c
	}
	for n, spec := range o.sets {
		f.sets[n] = spec
	}
	for m, es := range o.elems {
		for k, v := range es {
			f.elem(m, k.bytes(), v)
		}
	}
}

// chainState is a chain as it is in the kernel (or was last written).
type chainState struct {
	hook    *hookSpec
	digests []string
}

// tableState is what the kernel holds, in the form diffing needs: chains
// with their rules' digests, the sets and maps made per service port, and
// verdict map elements.
type tableState struct {
	chains map[string]chainState
	sets   map[string]bool
	elems  map[string]map[elemKey]verdict
	// podCIDRs are the pod-cidrs set's intervals, as (start, end-exclusive).
	podCIDRs []addrRange
}

func newTableState() *tableState {
	return &tableState{chains: map[string]chainState{}, sets: map[string]bool{}, elems: map[string]map[elemKey]verdict{}}
}

// state is what f looks like once written.
func (f *fragment) state() *tableState {
	s := newTableState()
	for n, c := range f.chains {
		s.chains[n] = chainState{hook: c.hook, digests: c.digests()}
	}
	for n := range f.sets {
		s.sets[n] = true
	}
	for m, es := range f.elems {
		s.elems[m] = map[elemKey]verdict{}
		for k, v := range es {
			s.elems[m][k] = v
		}
	}
	return s
}

// Keys of the maps: "ipv4_addr . inet_proto . inet_service" and
// "inet_proto . inet_service", each field padded to 4 bytes as nftables
// lays concatenations out in registers.
func serviceKey(ip netip.Addr, proto uint8, port uint16) []byte {
	a := ip.As4()
	return []byte{a[0], a[1], a[2], a[3], proto, 0, 0, 0, byte(port >> 8), byte(port), 0, 0}
}

func nodePortKey(proto uint8, port uint16) []byte {
	return []byte{proto, 0, 0, 0, byte(port >> 8), byte(port), 0, 0}
}

// parseServiceKey is serviceKey's inverse, for keys found in the kernel.
func parseServiceKey(k []byte) (netip.Addr, uint8, uint16, bool) {
	if len(k) != 12 {
		return netip.Addr{}, 0, 0, false
	}
	return netip.AddrFrom4([4]byte(k[:4])), k[4], uint16(k[8])<<8 | uint16(k[9]), true
}

func parseNodePortKey(k []byte) (uint8, uint16, bool) {
	if len(k) != 8 {
		return 0, 0, false
	}
	return k[0], uint16(k[4])<<8 | uint16(k[5]), true
}

var (
	serviceKeyType  = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	nodePortKeyType = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
)
