package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/reconciler/cloud"
	"github.com/keelson/keelson/store"
)

// LeaderElection tunes how several control-plane processes agree on the one
// that runs the controllers (store.Lead).
type LeaderElection struct {
	// Disabled runs the controllers at once, without an election: for a
	// single process that is sure to be alone (tests, benchmarks), or one
	// that calls Run inside a term of its own election (keelson server,
	// whose leader also runs the Git syncs).
	Disabled bool
	// TTL of the leader's etcd lease: a leader that dies is replaced within
	// about this long. Default 10s.
	TTL time.Duration
	// Identity names this process in the election; default hostname-pid.
	Identity string
	// RetryPeriod is the wait before trying again after etcd errors. Default 1s.
	RetryPeriod time.Duration
}

// ElectionName is the name of the controllers' election (store.Election).
const ElectionName = "controllers"

// Validate reports what is wrong with opts, as Run would, without running
// anything: for a caller that runs the controllers only once it leads.
func (o Options) Validate() error {
	if _, err := o.Services.parse(); err != nil {
		return fmt.Errorf("reconciler: %w", err)
	}
	if o.Cloud == nil && o.CloudProvider != "" {
		// Built once to check its name and configuration (a pool that does
		// not parse); each term builds its own.
		cfg := o.CloudConfig
		cfg.Services = func() []*corev1.Service { return nil }
		if _, err := cloud.New(o.CloudProvider, cfg); err != nil {
			return fmt.Errorf("reconciler: %w", err)
		}
	}
	return nil
}

// Run runs keelson's controllers (ReplicaSet, ReplicationController,
// Deployment, garbage collector, namespace, event expiry, the scheduler, node
// lifecycle with pod CIDRs, service IPs and node ports, the control plane's
// own services) on st until ctx
// ends. Several processes may call Run on the same etcd: they elect one
// leader, which alone runs the controllers; when it dies or loses etcd,
// another takes over within about LeaderElection.TTL, and the old leader's
// writes in flight are refused (store.ErrNotLeader). Run returns nil when
// ctx ends, and only returns early on an invalid configuration.
//
//	go reconciler.Run(ctx, st, logger, reconciler.Options{})
func Run(ctx context.Context, st *store.Store, log *slog.Logger, opts Options) error {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "reconciler")
	svc, err := opts.Services.parse()
	if err != nil {
		return fmt.Errorf("reconciler: %w", err)
	}
	opts.services = svc
	if opts.LeaderElection.Disabled {
		runTerm(ctx, st, log, opts)
		return nil
	}
	le := opts.LeaderElection
	onLeading := opts.OnLeading
	opts.OnLeading = nil // store.Lead tells it
	return st.Lead(ctx, store.Election{Name: ElectionName, Identity: le.Identity, TTL: le.TTL, RetryPeriod: le.RetryPeriod, OnLeading: onLeading},
		func(term context.Context) { runTerm(term, st, log, opts) })
}

// runTerm runs every controller until ctx ends, with fresh caches: nothing
// from a previous term is trusted.
func runTerm(ctx context.Context, st *store.Store, log *slog.Logger, opts Options) {
	if opts.OnLeading != nil {
		opts.OnLeading(true)
		defer opts.OnLeading(false)
	}
	newManager(st, log, opts).run(ctx)
}
