package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/tools/cache"
)

// RouteProtocol is the protocol number keelson's pod routes carry (`ip
// route show proto 75`); it is in no iproute2 list of known protocols.
const RouteProtocol netlink.RouteProtocol = 75

// Defaults of Config.
const (
	DefaultMinSyncPeriod = 50 * time.Millisecond
	DefaultResyncPeriod  = 30 * time.Second
)

// Back-off between attempts while routes cannot be read or written.
const (
	minRetry = 500 * time.Millisecond
	maxRetry = 30 * time.Second
)

// Config says what the router watches and which namespace it routes in.
type Config struct {
	// Nodes is an informer of all Nodes; the caller starts it. Required.
	Nodes cache.SharedIndexInformer
	// NodeName is this node, whose own pod CIDR is not routed. Required.
	NodeName string
	// Services, when set, is an informer of all Services: the router then
	// also answers ARP for the load balancer addresses this node is elected
	// for (see syncAddresses). EndpointSlices, when set, limits the
	// election of an externalTrafficPolicy Local service to the nodes with
	// its endpoints.
	Services, EndpointSlices cache.SharedIndexInformer
	// NetNS is the path of the network namespace to route in; the caller's
	// when empty.
	NetNS string
	// MinSyncPeriod is the least time between two syncs.
	// DefaultMinSyncPeriod when zero.
	MinSyncPeriod time.Duration
	// ResyncPeriod is how often the routes are checked without a Node
	// event: the kernel drops a route when its link goes down, and nothing
	// else says so. DefaultResyncPeriod when zero.
	ResyncPeriod time.Duration
	// OnHealth, when set, is called with the error of a sync that could not
	// route every node (naming the nodes), and with nil once one routes
	// them all, and after the first one.
	OnHealth func(error)
	// Logger receives the router's log; slog.Default() when nil.
	Logger *slog.Logger
}

// Router keeps the routes to other nodes' pod CIDRs.
type Router struct {
	cfg  Config
	log  *slog.Logger
	kick chan struct{}
	// garp repeats the announcements of the addresses this node takes.
	garp *announcer

	mu      sync.Mutex
	running bool

	healthy bool
	lastErr string
	// lastAddrErr is the last error of the load balancer addresses, logged
	// once.
	lastAddrErr string
	syncs       atomic.Uint64
	changes     atomic.Int64
}

// New checks cfg and returns a Router; Run starts it.
func New(cfg Config) (*Router, error) {
	if cfg.Nodes == nil {
		return nil, errors.New("route: the Nodes informer is required")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("route: NodeName is required")
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
	log := cfg.Logger.With("component", "route")
	return &Router{cfg: cfg, log: log, kick: make(chan struct{}, 1), garp: newAnnouncer(cfg.NetNS, log)}, nil
}

// Applied returns how many syncs have completed (routing every node it
// could). Tests wait for it to pass a value.
func (r *Router) Applied() uint64 { return r.syncs.Load() }

// Run keeps the routes in step with the Nodes until ctx ends, then returns
// nil and leaves the routes in place, so that pods keep talking while the
// agent restarts. Failures are reported to OnHealth and retried; they never
// end Run.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("route: Run called twice")
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}()

	poke := func(any) {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	reg, err := r.cfg.Nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, DeleteFunc: poke,
		// A sync asks the kernel about every node's route: only a change of
		// what routes come from is worth one.
		UpdateFunc: func(old, obj any) {
			if routingChanged(old, obj) {
				poke(obj)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("route: watch nodes: %w", err)
	}
	defer r.cfg.Nodes.RemoveEventHandler(reg)
	synced := []cache.InformerSynced{reg.HasSynced}
	for _, inf := range []cache.SharedIndexInformer{r.cfg.Services, r.cfg.EndpointSlices} {
		if inf == nil {
			continue
		}
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: poke, DeleteFunc: poke,
			UpdateFunc: func(_, obj any) { poke(obj) }})
		if err != nil {
			return fmt.Errorf("route: watch: %w", err)
		}
		defer inf.RemoveEventHandler(reg)
		synced = append(synced, reg.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	r.loop(ctx)
	return nil
}

func (r *Router) loop(ctx context.Context) {
	resync := time.NewTicker(r.cfg.ResyncPeriod)
	defer resync.Stop()
	defer r.garp.stop()
	var retry <-chan time.Time
	backoff := time.Duration(0)
	var h *netlink.Handle
	defer func() {
		if h != nil {
			h.Close()
		}
	}()
	for {
		var err error
		if h == nil {
			h, err = handleAt(r.cfg.NetNS)
		}
		if err == nil {
			err = r.sync(h)
		}
		if err != nil && isFatal(err) && h != nil {
			// A handle whose namespace failed is opened again next time.
			h.Close()
			h = nil
		}
		if err != nil {
			backoff = min(max(2*backoff, minRetry), maxRetry)
			retry = time.After(backoff)
		} else {
			backoff, retry = 0, nil
		}
		r.report(err)
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-resync.C:
		case <-retry:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.MinSyncPeriod):
		}
	}
}

// report tells OnHealth when the health changes: each new error, and nil
// once it works again.
func (r *Router) report(err error) {
	if err != nil {
		if !r.healthy && err.Error() == r.lastErr {
			return
		}
		r.lastErr, r.healthy = err.Error(), false
		r.log.Error("routing to other nodes' pods failed", "err", err)
		if r.cfg.OnHealth != nil {
			r.cfg.OnHealth(err)
		}
		return
	}
	r.lastErr = ""
	if !r.healthy {
		r.healthy = true
		if r.cfg.OnHealth != nil {
			r.cfg.OnHealth(nil)
		}
	}
}
