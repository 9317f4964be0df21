package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/keelson/keelson/store"
)

// LeaderElection tunes how several control-plane processes agree on the one
// that runs the controllers.
type LeaderElection struct {
	// Disabled runs the controllers at once, without an election: for a
	// single process that is sure to be alone (tests, benchmarks).
	Disabled bool
	// TTL of the leader's etcd lease: a leader that dies is replaced within
	// about this long. Default 10s.
	TTL time.Duration
	// Key is the etcd key prefix of the election; by default derived from the
	// store's prefix ("/keelson/registry" → "/keelson/election/controllers").
	Key string
	// Identity names this process in the election; default hostname-pid.
	Identity string
	// RetryPeriod is the wait before trying again after etcd errors. Default 1s.
	RetryPeriod time.Duration
}

func (o LeaderElection) withDefaults(st *store.Store) LeaderElection {
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.Key == "" {
		o.Key = strings.TrimSuffix(st.Prefix(), "/registry") + "/election/controllers"
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = time.Second
	}
	return o
}

// Run runs keelson's controllers (ReplicaSet, ReplicationController,
// Deployment, garbage collector, namespace, event expiry, the scheduler, node
// lifecycle with pod CIDRs, service IPs and node ports, the control plane's
// own services) on st until ctx
// ends. Several processes may call Run on the same etcd: they elect one
// leader, which alone runs the controllers; when it dies or loses etcd,
// another takes over within about LeaderElection.TTL. Run returns nil when
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
	le := opts.LeaderElection.withDefaults(st)
	ttl := int(le.TTL.Round(time.Second) / time.Second)
	if ttl < 1 {
		return fmt.Errorf("leader election TTL %s: must be at least 1s", le.TTL)
	}
	for ctx.Err() == nil {
		if err := campaign(ctx, st, log, opts, le, ttl); err != nil && ctx.Err() == nil {
			log.Warn("leader election", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(le.RetryPeriod):
			}
		}
	}
	return nil
}

// campaign waits to become leader, runs the controllers for as long as the
// lease holds, then steps down.
func campaign(ctx context.Context, st *store.Store, log *slog.Logger, opts Options, le LeaderElection, ttl int) error {
	sess, err := concurrency.NewSession(st.Client(), concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, le.Key)
	if err := el.Campaign(ctx, le.Identity); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	log.Info("leading: controllers start", "identity", le.Identity)
	term, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
			log.Warn("leader lease lost: controllers stop", "identity", le.Identity)
		case <-term.Done():
		}
		cancel()
	}()
	runTerm(term, st, log, opts)
	cancel()
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	_ = el.Resign(rctx) // best effort: a lease that ran out is already gone
	return nil
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
