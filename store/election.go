package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ErrNotLeader means a write made on behalf of a leader (a context from
// Lead) did not land because that leadership had already ended: another
// process may lead now, so the write must not happen.
var ErrNotLeader = errors.New("store: no longer the leader")

// ReservedTxnOps is how many operations the store may add to a transaction
// besides those it is given: a leader's fence (see Lead). Callers that pack
// transactions up to etcd's --max-txn-ops leave this many free.
const ReservedTxnOps = 1

// Election says how several processes sharing one etcd agree on the one that
// does some work (keelson's controllers and Git syncs).
type Election struct {
	// Name of the election; processes with the same name compete. Its key
	// is <root>/election/<Name>, beside the store's prefix.
	Name string
	// Identity names this process in the election: the value of its key
	// while it leads. Default hostname-pid.
	Identity string
	// TTL of the leader's etcd lease: a leader that dies or loses etcd is
	// replaced within about this long. Default 10s; at least 1s.
	TTL time.Duration
	// RetryPeriod is the pause before campaigning again after an etcd error.
	// Default 1s.
	RetryPeriod time.Duration
	// OnLeading, when set, is told when this process starts (true) and stops
	// (false) leading.
	OnLeading func(bool)
}

func (e Election) withDefaults() (Election, error) {
	if e.Name == "" || strings.Contains(e.Name, "/") {
		return e, fmt.Errorf("%w: election name %q: want a non-empty name without '/'", ErrInvalid, e.Name)
	}
	if e.TTL == 0 {
		e.TTL = 10 * time.Second
	}
	if e.TTL < time.Second {
		return e, fmt.Errorf("%w: election %s: TTL %s is under 1s, etcd's lease granularity", ErrInvalid, e.Name, e.TTL)
	}
	if e.Identity == "" {
		host, _ := os.Hostname()
		e.Identity = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if e.RetryPeriod <= 0 {
		e.RetryPeriod = time.Second
	}
	return e, nil
}

// ElectionKey returns the etcd key prefix of the election named name, beside
// the store's objects ("/keelson/registry" → "/keelson/election/<name>").
func (s *Store) ElectionKey(name string) string {
	return strings.TrimSuffix(s.prefix, "/registry") + "/election/" + name
}

// Lead campaigns in election e until ctx ends. Each time this process wins,
// lead runs with a context that ends when the leadership does: the lease is
// lost (etcd unreachable for about TTL, or the process paused) or ctx ends.
// Lead waits for lead to return before campaigning again, so two terms of one
// process never overlap, and resigns at once so that another process need
// not wait out the lease.
//
// Every write made through the store with lead's context is fenced: it lands
// only while this term's election key still exists, in the same etcd
// transaction, so a leader that lost its lease without noticing yet (a long
// GC pause, a partition) cannot write over its successor; such writes fail
// with ErrNotLeader.
//
// Lead returns nil when ctx ends, or an error at once for an invalid e.
func (s *Store) Lead(ctx context.Context, e Election, lead func(ctx context.Context)) error {
	e, err := e.withDefaults()
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		if err := s.term(ctx, e, lead); err != nil && ctx.Err() == nil {
			s.log.Warn("leader election", "election", e.Name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(e.RetryPeriod):
			}
		}
	}
	return nil
}

// term waits to win, runs lead for as long as the lease holds, then resigns.
func (s *Store) term(ctx context.Context, e Election, lead func(context.Context)) error {
	ttl := int(e.TTL.Round(time.Second) / time.Second)
	sess, err := concurrency.NewSession(s.client, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, s.ElectionKey(e.Name))
	start := time.Now()
	if err := el.Campaign(ctx, e.Identity); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	s.log.Info("leading", "election", e.Name, "identity", e.Identity, "waited", time.Since(start).Round(time.Millisecond).String())
	elections.leading.WithLabelValues(e.Name).Set(1)
	elections.transitions.WithLabelValues(e.Name).Inc()
	defer elections.leading.WithLabelValues(e.Name).Set(0)

	termCtx, cancel := context.WithCancel(withFence(ctx, fence{key: el.Key(), rev: el.Rev()}))
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			s.log.Warn("leader lease lost", "election", e.Name, "identity", e.Identity)
		case <-termCtx.Done():
		}
		cancel()
	}()
	if e.OnLeading != nil {
		e.OnLeading(true)
	}
	lead(termCtx)
	cancel()
	if e.OnLeading != nil {
		e.OnLeading(false)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	_ = el.Resign(rctx) // best effort: a lease that ran out is gone already
	s.log.Info("stopped leading", "election", e.Name, "identity", e.Identity)
	return nil
}

// Leader returns the identity of the process leading election name, or ""
// when none does.
func (s *Store) Leader(ctx context.Context, name string) (string, error) {
	resp, err := s.client.Get(ctx, s.ElectionKey(name)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("election %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// fence is a leadership term's proof: the election key this process made and
// the revision it made it at. The key exists with that create revision
// exactly while the term lasts.
type fence struct {
	key string
	rev int64
}

type fenceKey struct{}

func withFence(ctx context.Context, f fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

func fenceOf(ctx context.Context) (fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(fence)
	return f, ok
}

// Fenced reports whether writes with ctx are fenced by a leadership term
// (ctx comes from Lead).
func Fenced(ctx context.Context) bool {
	_, ok := fenceOf(ctx)
	return ok
}
