package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Defaults of Config.
const (
	DefaultTable         = "keelson"
	DefaultMinSyncPeriod = 50 * time.Millisecond
	DefaultResyncPeriod  = time.Hour
)

// Back-off between attempts while nftables cannot be used.
const (
	minRetry = 500 * time.Millisecond
	maxRetry = 30 * time.Second
)

// Config says what the proxier watches and which namespace it programs.
type Config struct {
	// Services, EndpointSlices and Nodes are informers of all namespaces;
	// the caller starts them. Required.
	Services, EndpointSlices, Nodes cache.SharedIndexInformer
	// NodeName is this node: endpoints on it serve the Local traffic
	// policies. Required.
	NodeName string
	// Masquerade rewrites the source of pod traffic leaving the pod network
	// to the node's address (the agent's --no-masquerade turns it off).
	Masquerade bool
	// Table is the nftables table (family ip) the proxier owns;
	// DefaultTable when empty.
	Table string
	// NetNS is the path of the network namespace to program; the caller's
	// when empty.
	NetNS string
	// MinSyncPeriod is the least time between two syncs: changes that
	// arrive within it are written together. DefaultMinSyncPeriod when zero.
	MinSyncPeriod time.Duration
	// ResyncPeriod is how often the whole table is read back and compared
	// with what is wanted, to repair what someone else changed in it.
	// DefaultResyncPeriod when zero.
	ResyncPeriod time.Duration
	// OnHealth, when set, is called with the error of every sync that
	// failed (nftables unavailable, the namespace gone) and with nil once a
	// sync succeeds after that, and after the first one.
	OnHealth func(error)
	// Logger receives the proxier's log; slog.Default() when nil.
	Logger *slog.Logger
}

// Proxier keeps an nftables table that sends traffic for services' cluster
// IPs and node ports to their endpoints. It writes only what changed, in one
// transaction per sync, and on start reconciles the table a previous agent
// left instead of flushing it.
type Proxier struct {
	cfg   Config
	log   *slog.Logger
	table *nftables.Table

	mu         sync.Mutex
	running    bool
	dirty      map[string]bool
	nodesDirty bool
	full       bool
	slices     map[string]map[string]*discoveryv1.EndpointSlice
	kick       chan struct{}

	// Owned by the sync loop.
	conn    *nftConn
	ct      *conntrack
	applied map[string]*tableState
	pods    []addrRange
	owners  *owners
	healthy bool
	// rebuild is set when a full sync's transaction was refused: the next
	// one deletes and remakes the table (in one transaction still) rather
	// than trust what it reads back.
	rebuild bool

	syncs atomic.Uint64
	// ops counts the operations written, in all transactions.
	ops atomic.Int64
}

// New checks cfg and returns a Proxier; Run starts it.
func New(cfg Config) (*Proxier, error) {
	if cfg.Services == nil || cfg.EndpointSlices == nil || cfg.Nodes == nil {
		return nil, errors.New("proxy: the Services, EndpointSlices and Nodes informers are required")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("proxy: NodeName is required")
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if len(cfg.Table) > 255 {
		return nil, fmt.Errorf("proxy: table name %q is longer than nftables allows (255)", cfg.Table)
	}
	if cfg.MinSyncPeriod <= 0 {
		cfg.MinSyncPeriod = DefaultMinSyncPeriod
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = DefaultResyncPeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Proxier{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "proxy", "table", cfg.Table),
		table:   &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyIPv4},
		dirty:   map[string]bool{},
		slices:  map[string]map[string]*discoveryv1.EndpointSlice{},
		kick:    make(chan struct{}, 1),
		applied: map[string]*tableState{},
		owners:  newOwners(),
	}, nil
}

// Applied returns how many syncs have completed, each one transaction in
// the kernel (or none, when what changed in the API left the rules as they
// were). Tests and benchmarks wait for it to pass a value.
func (p *Proxier) Applied() uint64 { return p.syncs.Load() }

// Run keeps the table in step with the informers until ctx ends, then
// returns nil and leaves the rules in place, so that traffic flows while the
// agent restarts. Failures to program nftables are reported to OnHealth and
// retried with back-off; they never end Run.
func (p *Proxier) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("proxy: Run called twice")
	}
	p.running, p.full = true, true
	p.mu.Unlock()

	regs, err := p.watch()
	defer p.unwatch(regs)
	if err != nil {
		return err
	}
	synced := make([]cache.InformerSynced, len(regs))
	for i, r := range regs {
		synced[i] = r.reg.HasSynced
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	defer p.closeConn()
	p.loop(ctx)
	return nil
}

// loop syncs whenever something changed, at most once per MinSyncPeriod,
// and retries failures with a growing back-off.
func (p *Proxier) loop(ctx context.Context) {
	resync := time.NewTicker(p.cfg.ResyncPeriod)
	defer resync.Stop()
	var next time.Time
	var retry <-chan time.Time
	backoff := time.Duration(0)
	p.poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-retry:
		case <-resync.C:
			p.mu.Lock()
			p.full = true
			p.mu.Unlock()
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		did, err := p.syncOnce()
		switch {
		case err != nil:
			backoff = min(max(2*backoff, minRetry), maxRetry)
			next, retry = time.Now().Add(backoff), time.After(backoff)
		case did:
			backoff, retry = 0, nil
			next = time.Now().Add(p.cfg.MinSyncPeriod)
		}
		if did {
			p.report(err)
		}
	}
}

func (p *Proxier) report(err error) {
	if err != nil {
		p.healthy = false
		p.log.Error("programming nftables failed; retrying", "err", err)
		if p.cfg.OnHealth != nil {
			p.cfg.OnHealth(err)
		}
		return
	}
	if !p.healthy {
		p.healthy = true
		if p.cfg.OnHealth != nil {
			p.cfg.OnHealth(nil)
		}
	}
}

func (p *Proxier) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *Proxier) closeConn() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	if p.ct != nil {
		p.ct.close()
		p.ct = nil
	}
}

// registration is an event handler of one informer, to remove when Run ends.
type registration struct {
	inf cache.SharedIndexInformer
	reg cache.ResourceEventHandlerRegistration
}

// watch registers the event handlers, which only note what changed.
func (p *Proxier) watch() ([]registration, error) {
	var regs []registration
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandlerFuncs) error {
		r, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("proxy: watch: %w", err)
		}
		regs = append(regs, registration{inf: inf, reg: r})
		return nil
	}
	both := func(on func(obj any)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{AddFunc: on, UpdateFunc: func(old, obj any) { on(old); on(obj) }, DeleteFunc: on}
	}
	err := errors.Join(
		add(p.cfg.Services, both(p.onService)),
		add(p.cfg.EndpointSlices, both(p.onSlice)),
		// Of a Node only its pod CIDRs matter here: a status update, which
		// every node posts now and then, leaves the pod-cidrs set alone.
		add(p.cfg.Nodes, cache.ResourceEventHandlerFuncs{AddFunc: p.onNode, DeleteFunc: p.onNode,
			UpdateFunc: func(old, obj any) {
				if podCIDRsChanged(old, obj) {
					p.onNode(obj)
				}
			}}))
	return regs, err
}

func (p *Proxier) unwatch(regs []registration) {
	for _, r := range regs {
		_ = r.inf.RemoveEventHandler(r.reg)
	}
	p.mu.Lock()
	p.running = false
	p.mu.Unlock()
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func (p *Proxier) onService(obj any) {
	svc, ok := unwrap(obj).(*corev1.Service)
	if !ok {
		return
	}
	p.mu.Lock()
	p.dirty[svc.Namespace+"/"+svc.Name] = true
	p.mu.Unlock()
	p.poke()
}

// onSlice keeps the index of slices by service (an update handler sees the
// old slice, then the new one, so a slice that moved to another service
// leaves the first) and marks the service dirty.
func (p *Proxier) onSlice(obj any) {
	s, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	svc, ok := sliceService(s)
	if !ok {
		return
	}
	key := s.Namespace + "/" + s.Name
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, exists, err := p.cfg.EndpointSlices.GetStore().Get(s)
	latest, _ := cur.(*discoveryv1.EndpointSlice)
	if err == nil && exists && latest != nil {
		if owner, ok := sliceService(latest); ok && owner == svc {
			if p.slices[svc] == nil {
				p.slices[svc] = map[string]*discoveryv1.EndpointSlice{}
			}
			p.slices[svc][key] = latest
		} else {
			delete(p.slices[svc], key)
		}
	} else {
		delete(p.slices[svc], key)
	}
	if len(p.slices[svc]) == 0 {
		delete(p.slices, svc)
	}
	p.dirty[svc] = true
	p.poke()
}

func (p *Proxier) onNode(obj any) {
	if _, ok := unwrap(obj).(*corev1.Node); !ok {
		return
	}
	p.mu.Lock()
	p.nodesDirty = true
	p.mu.Unlock()
	p.poke()
}
