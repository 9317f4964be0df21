package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// errIncompatible says the table holds an object keelson cannot change in
// place (a base chain on another hook): the table is then rebuilt, in one
// transaction still.
var errIncompatible = errors.New("proxy: the table has an object of another shape than wanted")

// setIDs numbers the sets made in a transaction. google/nftables would do it
// with a package counter of its own that is not safe for concurrent use.
var setIDs atomic.Uint32

func nextSetID() uint32 { return setIDs.Add(1) }

// batch collects the operations of one transaction, then writes them in the
// order the kernel needs: what is referred to exists before what refers to
// it, and nothing is deleted while something still refers to it.
type batch struct {
	newSets    map[string]setSpec
	newChains  []*chainSpec
	flush      []string     // chains whose rules are all rewritten
	fill       []*chainSpec // chains whose rules are (re)written
	delElems   map[string][]elemKey
	addElems   map[string]map[elemKey]verdict
	dropChains []string
	dropSets   []string
	podCIDRs   []addrRange // replaces the pod-cidrs set when setPods
	setPods    bool
	// gone are the endpoints whose chains go: their UDP flows are cleared.
	gone []goneEndpoint
}

type goneEndpoint struct {
	proto string
	addr  netip.AddrPort
}

func newBatch() *batch {
	return &batch{newSets: map[string]setSpec{}, delElems: map[string][]elemKey{}, addElems: map[string]map[elemKey]verdict{}}
}

// diff adds to b what turns old into want.
func (b *batch) diff(old *tableState, want *fragment) error {
	for name, c := range want.chains {
		o, ok := old.chains[name]
		switch {
		case !ok:
			b.newChains = append(b.newChains, c)
			b.fill = append(b.fill, c)
		case !sameHook(o.hook, c.hook):
			return fmt.Errorf("%w: chain %s", errIncompatible, name)
		case !slices.Equal(o.digests, c.digests()):
			b.flush = append(b.flush, name)
			b.fill = append(b.fill, c)
		}
	}
	for name := range old.chains {
		if _, ok := want.chains[name]; !ok {
			b.dropChains = append(b.dropChains, name)
			if proto, addr, ok := parseEndpointChain(name); ok {
				b.gone = append(b.gone, goneEndpoint{proto: string(proto), addr: addr})
			}
		}
	}
	for name, spec := range want.sets {
		if !old.sets[name] {
			b.newSets[name] = spec
		}
	}
	for name := range old.sets {
		if _, ok := want.sets[name]; !ok {
			b.dropSets = append(b.dropSets, name)
		}
	}
	for m, es := range old.elems {
		for k, v := range es {
			if w, ok := want.elems[m][k]; !ok || w != v {
				b.delElems[m] = append(b.delElems[m], k)
			}
		}
	}
	for m, es := range want.elems {
		for k, v := range es {
			if o, ok := old.elems[m][k]; !ok || o != v {
				if b.addElems[m] == nil {
					b.addElems[m] = map[elemKey]verdict{}
				}
				b.addElems[m][k] = v
			}
		}
	}
	return nil
}

func sameHook(a, b *hookSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// size counts the messages the batch will send.
func (b *batch) size() int {
	n := len(b.newSets) + len(b.newChains) + len(b.flush) + 2*len(b.dropChains) + len(b.dropSets)
	for _, c := range b.fill {
		n += len(c.rules)
	}
	for _, ks := range b.delElems {
		n += len(chunks(ks, func(elemKey) int { return 0 }))
	}
	for _, es := range b.addElems {
		n += len(chunks(sortedKeys(es), func(k elemKey) int { return len(es[k].chain) }))
	}
	if b.setPods {
		n += 2
	}
	return n
}

// LogValue lists what b changes, for the debug log.
func (b *batch) LogValue() slog.Value {
	var attrs []slog.Attr
	add := func(k string, v []string) {
		if len(v) > 0 {
			attrs = append(attrs, slog.Any(k, v))
		}
	}
	var fill, del, addE []string
	for _, c := range b.fill {
		fill = append(fill, c.name)
	}
	for m, ks := range b.delElems {
		del = append(del, fmt.Sprintf("%s(%d)", m, len(ks)))
	}
	for m, ks := range b.addElems {
		addE = append(addE, fmt.Sprintf("%s(%d)", m, len(ks)))
	}
	add("new_sets", sortedKeys(b.newSets))
	add("write_chains", fill)
	add("drop_chains", b.dropChains)
	add("drop_sets", b.dropSets)
	add("delete_elements", del)
	add("add_elements", addE)
	if b.setPods {
		attrs = append(attrs, slog.Int("pod_cidrs", len(b.podCIDRs)))
	}
	return slog.GroupValue(attrs...)
}

// write queues b's operations on c.
func (b *batch) write(c *nftables.Conn, t *nftables.Table) error {
	for _, name := range sortedKeys(b.newSets) {
		if err := c.AddSet(newSet(t, name, b.newSets[name]), nil); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	for _, ch := range b.newChains {
		c.AddChain(nftChain(t, ch))
	}
	for _, name := range b.flush {
		c.FlushChain(&nftables.Chain{Table: t, Name: name})
	}
	for _, ch := range b.fill {
		addRules(c, t, ch)
	}
	if err := b.writeElements(c, t); err != nil {
		return err
	}
	// A chain's rules may lead to another chain that goes too: emptying
	// them all first lets them be deleted in any order.
	for _, name := range b.dropChains {
		c.FlushChain(&nftables.Chain{Table: t, Name: name})
	}
	for _, name := range b.dropChains {
		c.DelChain(&nftables.Chain{Table: t, Name: name})
	}
	for _, name := range b.dropSets {
		c.DelSet(&nftables.Set{Table: t, Name: name})
	}
	if b.setPods {
		return writePodCIDRs(c, t, b.podCIDRs)
	}
	return nil
}

func nftChain(t *nftables.Table, ch *chainSpec) *nftables.Chain {
	c := &nftables.Chain{Table: t, Name: ch.name}
	if ch.hook != nil {
		hook, prio := ch.hook.hook, ch.hook.prio
		c.Type, c.Hooknum, c.Priority = ch.hook.typ, &hook, &prio
		accept := nftables.ChainPolicyAccept
		c.Policy = &accept
	}
	return c
}

// addRules appends ch's rules, each with its digest in its comment.
func addRules(c *nftables.Conn, t *nftables.Table, ch *chainSpec) {
	chain := &nftables.Chain{Table: t, Name: ch.name}
	for _, r := range ch.rules {
		c.AddRule(&nftables.Rule{Table: t, Chain: chain, Exprs: r.exprs, UserData: r.userData()})
	}
}

// newSet is the nftables set of a spec: an affinity set or a pick map.
func newSet(t *nftables.Table, name string, spec setSpec) *nftables.Set {
	if spec.affinity > 0 {
		return &nftables.Set{Table: t, ID: nextSetID(), Name: name, KeyType: nftables.TypeIPAddr,
			Dynamic: true, HasTimeout: true, Timeout: secondsDuration(spec.affinity)}
	}
	return &nftables.Set{Table: t, ID: nextSetID(), Name: name, IsMap: true,
		KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.BigEndian, DataType: nftables.TypeVerdict}
}

// writeElements deletes, then adds, map elements, changed ones both.
func (b *batch) writeElements(c *nftables.Conn, t *nftables.Table) error {
	for _, m := range sortedKeys(b.delElems) {
		keys := b.delElems[m]
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for _, part := range chunks(keys, func(elemKey) int { return 0 }) {
			elems := make([]nftables.SetElement, len(part))
			for i, k := range part {
				elems[i] = nftables.SetElement{Key: k.bytes()}
			}
			if err := c.SetDeleteElements(&nftables.Set{Table: t, Name: m}, elems); err != nil {
				return fmt.Errorf("delete elements of %s: %w", m, err)
			}
		}
	}
	for _, m := range sortedKeys(b.addElems) {
		es := b.addElems[m]
		for _, part := range chunks(sortedKeys(es), func(k elemKey) int { return len(es[k].chain) }) {
			elems := make([]nftables.SetElement, len(part))
			for i, k := range part {
				elems[i] = nftables.SetElement{Key: k.bytes(), VerdictData: &expr.Verdict{Kind: es[k].kind, Chain: es[k].chain}}
			}
			if err := c.SetAddElements(&nftables.Set{Table: t, Name: m, IsMap: true}, elems); err != nil {
				return fmt.Errorf("add elements to %s: %w", m, err)
			}
		}
	}
	return nil
}

// maxElementBytes bounds the elements of one message: they are one netlink
// attribute, whose length is 16 bits. A longer one wraps around silently
// and the kernel takes the first few hundred elements only.
const maxElementBytes = 32 << 10

// chunks splits keys so that each part's elements, with extra bytes of
// data each, fit in maxElementBytes.
func chunks(keys []elemKey, extra func(elemKey) int) [][]elemKey {
	var out [][]elemKey
	start, size := 0, 0
	for i, k := range keys {
		n := 48 + len(k)/2 + extra(k)
		if i > start && size+n > maxElementBytes {
			out = append(out, keys[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(keys) {
		out = append(out, keys[start:])
	}
	return out
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
