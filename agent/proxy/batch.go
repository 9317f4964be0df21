package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/google/nftables"
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
	newSets    map[string]int32 // affinity sets to make, with their timeouts
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
	return &batch{newSets: map[string]int32{}, delElems: map[string][]elemKey{}, addElems: map[string]map[elemKey]verdict{}}
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
	for name, timeout := range want.sets {
		if !old.sets[name] {
			b.newSets[name] = timeout
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
		for _, r := range c.rules {
			if r.vmap != nil {
				n += 2
			}
		}
	}
	n += len(b.delElems) + len(b.addElems)
	if b.setPods {
		n += 2
	}
	return n
}

// write queues b's operations on c.
func (b *batch) write(c *nftables.Conn, t *nftables.Table) error {
	for _, name := range sortedKeys(b.newSets) {
		s := &nftables.Set{Table: t, ID: nextSetID(), Name: name, KeyType: nftables.TypeIPAddr,
			Dynamic: true, HasTimeout: true, Timeout: secondsDuration(b.newSets[name])}
		if err := c.AddSet(s, nil); err != nil {
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
		if err := addRules(c, t, ch); err != nil {
			return err
		}
	}
	for _, m := range sortedKeys(b.delElems) {
		elems := make([]nftables.SetElement, len(b.delElems[m]))
		for i, k := range b.delElems[m] {
			elems[i] = nftables.SetElement{Key: k.bytes()}
		}
		if err := c.SetDeleteElements(&nftables.Set{Table: t, Name: m}, elems); err != nil {
			return fmt.Errorf("delete elements of %s: %w", m, err)
		}
	}
	for _, m := range sortedKeys(b.addElems) {
		var elems []nftables.SetElement
		for _, k := range sortedKeys(b.addElems[m]) {
			v := b.addElems[m][k]
			elems = append(elems, nftables.SetElement{Key: k.bytes(), VerdictData: &expr.Verdict{Kind: v.kind, Chain: v.chain}})
		}
		if err := c.SetAddElements(&nftables.Set{Table: t, Name: m, IsMap: true}, elems); err != nil {
			return fmt.Errorf("add elements to %s: %w", m, err)
		}
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

// addRules appends ch's rules, each with its digest in its comment and, for
// a numgen rule, its anonymous verdict map.
func addRules(c *nftables.Conn, t *nftables.Table, ch *chainSpec) error {
	chain := &nftables.Chain{Table: t, Name: ch.name}
	for _, r := range ch.rules {
		exprs := r.exprs
		if r.vmap != nil {
			set, elems := anonVmap(t, nextSetID(), r.vmap)
			if err := c.AddSet(set, elems); err != nil {
				return fmt.Errorf("chain %s: verdict map: %w", ch.name, err)
			}
			exprs = append(slices.Clip(exprs), &expr.Lookup{SourceRegister: reg1, SetName: set.Name, SetID: set.ID, IsDestRegSet: true})
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: chain, Exprs: exprs, UserData: r.userData()})
	}
	return nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
