package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// syncOnce writes what changed since the last sync, or reconciles the whole
// table with the kernel after a start or a failure; with nothing to do it
// does nothing and reports so. A failed transaction changed nothing
// (nftables transactions are atomic), but the next sync still reads the
// table back, on a new socket, rather than trust anything.
func (p *Proxier) syncOnce() (bool, error) {
	p.mu.Lock()
	dirty, nodesDirty, full := p.dirty, p.nodesDirty, p.full
	p.dirty, p.nodesDirty, p.full = map[string]bool{}, false, false
	p.mu.Unlock()
	if !full && !nodesDirty && len(dirty) == 0 {
		return false, nil
	}

	err := p.sync(dirty, nodesDirty, full)
	if err != nil {
		p.mu.Lock()
		p.full = true
		p.mu.Unlock()
		p.closeConn()
		return true, err
	}
	p.syncs.Add(1)
	return true, nil
}

func (p *Proxier) sync(dirty map[string]bool, nodesDirty, full bool) (err error) {
	// google/nftables decodes what it reads from the kernel with indexing
	// that trusts the data (set userdata, element comments); an object
	// someone else put in the table must not take the agent down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("proxy: decoding the table failed: %v", r)
		}
	}()
	if p.conn == nil {
		c, err := dialNFT(p.cfg.NetNS)
		if err != nil {
			return err
		}
		p.conn = c
	}
	if full {
		return p.syncFull()
	}
	return p.syncDirty(dirty, nodesDirty)
}

// syncDirty rewrites the services that changed and, when nodes changed, the
// pod CIDR set.
func (p *Proxier) syncDirty(dirty map[string]bool, nodesDirty bool) error {
	b := newBatch()
	next := map[string]*tableState{}
	for _, key := range sortedKeys(dirty) {
		f := p.buildService(key)
		old := p.applied[key]
		if old == nil {
			old = newTableState()
		}
		if err := b.diff(old, f); err != nil {
			return err
		}
		next[key] = f.state()
	}
	if nodesDirty {
		pods := p.podRanges()
		if !sameRanges(pods, p.pods) {
			b.setPods, b.podCIDRs = true, pods
		}
	}
	if b.size() > 0 {
		if err := p.commit(b, nil); err != nil {
			return err
		}
	}
	for key, s := range next {
		if len(s.chains) == 0 && len(s.elems) == 0 && len(s.sets) == 0 {
			delete(p.applied, key)
		} else {
			p.applied[key] = s
		}
	}
	if b.setPods {
		p.pods = b.podCIDRs
	}
	p.clearFlows(b)
	return nil
}

// syncFull reads the table back and makes it what is wanted, changing only
// what differs: a restarted agent does not disturb live traffic.
func (p *Proxier) syncFull() error {
	obs, err := observe(p.conn.Conn, p.table)
	if err != nil {
		return fmt.Errorf("read nftables table ip %s: %w", p.table.Name, err)
	}
	want, perService := p.wantAll()
	pods := p.podRanges()
	b, sk, err := p.planFull(obs, want, pods)
	if err != nil {
		return err
	}
	if sk.create || len(sk.missing) > 0 || b.size() > 0 {
		if err := p.commit(b, sk); err != nil {
			p.rebuild = !sk.rebuild
			return err
		}
	}
	p.rebuild = false
	p.applied, p.pods = perService, pods
	p.clearFlows(b)
	p.log.Debug("table reconciled", "services", len(perService), "operations", b.size(), "changes", b)
	return nil
}

// wantAll computes the whole table: the skeleton and every service, whose
// parts it also returns by service, as they will be once written.
func (p *Proxier) wantAll() (*fragment, map[string]*tableState) {
	p.owners = newOwners()
	want := skeleton(p.cfg.Masquerade)
	perService := map[string]*tableState{}
	keys := p.cfg.Services.GetStore().ListKeys()
	sort.Strings(keys)
	for _, key := range keys {
		f := p.buildService(key)
		want.merge(f)
		if !f.empty() {
			perService[key] = f.state()
		}
	}
	return want, perService
}

// planFull diffs the observed table (nil when there is none) with want.
func (p *Proxier) planFull(obs *observed, want *fragment, pods []addrRange) (*batch, *skeletonOp, error) {
	b := newBatch()
	sk := &skeletonOp{create: obs == nil}
	if obs != nil && p.rebuild {
		p.log.Warn("rebuilding the table in one transaction", "reason", "the last reconcile's transaction was refused")
		sk.create, sk.rebuild = true, true
	} else if obs != nil {
		err := obs.skeletonSetsOK(staticSets(p.table))
		if err == nil {
			err = b.diff(obs.state, want)
		}
		if errors.Is(err, errIncompatible) {
			p.log.Warn("rebuilding the table in one transaction", "reason", err)
			sk.create, sk.rebuild = true, true
		} else if err != nil {
			return nil, nil, err
		}
		for _, s := range staticSets(p.table) {
			if obs.sets[s.Name] == nil {
				sk.missing = append(sk.missing, s.Name)
			}
		}
		b.setPods, b.podCIDRs = !obs.podsOK || !sameRanges(obs.state.podCIDRs, pods), pods
	}
	if sk.create {
		b = newBatch()
		b.setPods, b.podCIDRs = true, pods
		if err := b.diff(newTableState(), want); err != nil {
			return nil, nil, err
		}
	}
	return b, sk, nil
}

// skeletonOp says what a full sync does to the table and its fixed sets:
// make them (create), after deleting the table (rebuild), or add the sets
// that are missing.
type skeletonOp struct {
	create, rebuild bool
	missing         []string
}

// commit writes b in one transaction, after the table and its fixed sets
// when sk says so.
func (p *Proxier) commit(b *batch, sk *skeletonOp) error {
	c := p.conn
	if sk != nil {
		if sk.rebuild {
			c.DelTable(p.table)
		}
		if sk.create {
			c.AddTable(p.table)
		}
		for _, s := range staticSets(p.table) {
			if !sk.create && !slices.Contains(sk.missing, s.Name) {
				continue
			}
			s.ID = nextSetID()
			if err := c.AddSet(s, nil); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
		}
	}
	if err := b.write(c.Conn, p.table); err != nil {
		return err
	}
	// Each operation is acknowledged; rules are echoed back too.
	if err := c.grow(b.size()*2048 + 1<<20); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction of %d operations on table ip %s: %w", b.size(), p.table.Name, err)
	}
	p.ops.Add(int64(b.size()))
	return nil
}

// buildService computes what a service wants, claiming its cluster IP ports
// and node ports; a port another service holds already is left out, with
// an error in the log, so that bad data in one service does not fail every
// transaction.
func (p *Proxier) buildService(key string) *fragment {
	f := newFragment()
	obj, exists, err := p.cfg.Services.GetStore().GetByKey(key)
	svc, _ := obj.(*corev1.Service)
	if err != nil || !exists || svc == nil {
		p.redirty(p.owners.settle(key, nil))
		return f
	}
	ports, err := servicePorts(svc)
	if err != nil {
		p.log.Error("service port left out", "service", key, "err", err)
	}
	p.mu.Lock()
	slices := make([]*discoveryv1.EndpointSlice, 0, len(p.slices[key]))
	for _, s := range p.slices[key] {
		slices = append(slices, s)
	}
	p.mu.Unlock()
	sort.Slice(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })

	var claimed []string
	for i := range ports {
		sp := &ports[i]
		claims := sp.claims()
		if holder, free := p.owners.free(key, claims); !free {
			p.log.Error("service port conflicts with another service's; left out", "service", key, "port", sp.id(), "holder", holder)
			continue
		}
		// A load balancer address another service holds is left out
		// alone: the port keeps its cluster IP, node port and other
		// addresses.
		lbs := sp.loadBalancerIPs[:0:0]
		for _, ip := range sp.loadBalancerIPs {
			c := sp.loadBalancerClaim(ip)
			if holder, free := p.owners.free(key, []string{c}); !free {
				p.log.Error("load balancer address conflicts with another service's; left out", "service", key, "port", sp.id(), "address", ip, "holder", holder)
				continue
			}
			lbs = append(lbs, ip)
			claims = append(claims, c)
		}
		sp.loadBalancerIPs = lbs
		claimed = append(claimed, claims...)
		addPort(f, sp, endpointsFor(sp, slices, p.cfg.NodeName))
	}
	p.redirty(p.owners.settle(key, claimed))
	return f
}

func (p *Proxier) redirty(keys []string) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	for _, k := range keys {
		p.dirty[k] = true
	}
	p.mu.Unlock()
	p.poke()
}

func (p *Proxier) podRanges() []addrRange {
	var nodes []*corev1.Node
	for _, obj := range p.cfg.Nodes.GetStore().List() {
		if n, ok := obj.(*corev1.Node); ok {
			nodes = append(nodes, n)
		}
	}
	rs, errs := podRanges(nodes)
	for _, err := range errs {
		p.log.Error("pod CIDR left out", "err", err)
	}
	return rs
}

// claims are the addresses a port cannot go without: its cluster IP port
// and node port. Its load balancer addresses are claimed one by one
// (loadBalancerClaim).
func (sp *servicePort) claims() []string {
	proto := protoNumbers[sp.proto]
	c := []string{"ip " + string(keyOf(serviceKey(sp.ip, proto, sp.port)))}
	if sp.nodePort != 0 {
		c = append(c, "nodeport "+string(keyOf(nodePortKey(proto, sp.nodePort))))
	}
	return c
}

// loadBalancerClaim is the claim of the port on load balancer address ip.
func (sp *servicePort) loadBalancerClaim(ip netip.Addr) string {
	return "ip " + string(keyOf(serviceKey(ip, protoNumbers[sp.proto], sp.port)))
}

// external reports whether traffic from outside reaches the port: through
// its node port or a load balancer address.
func (sp *servicePort) external() bool { return sp.nodePort != 0 || len(sp.loadBalancerIPs) > 0 }

// owners says which service holds each cluster IP port and node port.
type owners struct {
	holder  map[string]string
	held    map[string][]string
	waiting map[string]map[string]bool
}

func newOwners() *owners {
	return &owners{holder: map[string]string{}, held: map[string][]string{}, waiting: map[string]map[string]bool{}}
}

// free reports whether svc may take all of claims, and if not who holds
// one; svc then waits for it.
func (o *owners) free(svc string, claims []string) (string, bool) {
	for _, c := range claims {
		if h, ok := o.holder[c]; ok && h != svc {
			if o.waiting[c] == nil {
				o.waiting[c] = map[string]bool{}
			}
			o.waiting[c][svc] = true
			return h, false
		}
	}
	return "", true
}

// settle records what svc holds now and returns the services that waited
// for what it let go.
func (o *owners) settle(svc string, claims []string) []string {
	keep := map[string]bool{}
	for _, c := range claims {
		keep[c] = true
		o.holder[c] = svc
	}
	var wake []string
	for _, c := range o.held[svc] {
		if keep[c] {
			continue
		}
		delete(o.holder, c)
		for w := range o.waiting[c] {
			wake = append(wake, w)
		}
		delete(o.waiting, c)
	}
	if len(claims) == 0 {
		delete(o.held, svc)
	} else {
		o.held[svc] = claims
	}
	return wake
}
