package reconciler

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/store"
)

// maxBindBatch bounds how many bindings share one etcd transaction: within
// etcd's default --max-txn-ops (128), with room for the store's own
// operations (the leader's fence).
const maxBindBatch = 128 - store.ReservedTxnOps

type bindRequest struct {
	pod  *corev1.Pod // the pod as the scheduler saw it, with the node set
	done chan error
}

// binder writes bindings, gathering those that wait at the same moment into
// one transaction: under load a binding then costs a share of two etcd
// round trips instead of two of its own. A transaction fails as a whole when
// any of its pods changed meanwhile, so a failed batch is written again pod
// by pod, each with its own answer.
type binder struct {
	st   *store.Store
	reqs chan bindRequest
}

func newBinder(st *store.Store) *binder {
	return &binder{st: st, reqs: make(chan bindRequest)}
}

// bind writes p (spec.nodeName and PodScheduled set) by compare-and-swap.
// Errors: those of store.Update, ctx's.
func (b *binder) bind(ctx context.Context, p *corev1.Pod) error {
	r := bindRequest{pod: p, done: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run writes batches with several writers until ctx ends.
func (b *binder) run(ctx context.Context, writers int) {
	for range writers {
		go func() {
			for {
				var batch []bindRequest
				select {
				case <-ctx.Done():
					return
				case r := <-b.reqs:
					batch = append(batch, r)
				}
			gather:
				for len(batch) < maxBindBatch {
					select {
					case r := <-b.reqs:
						batch = append(batch, r)
					default:
						break gather
					}
				}
				b.write(ctx, batch)
			}
		}()
	}
}

func (b *binder) write(ctx context.Context, batch []bindRequest) {
	if len(batch) > 1 {
		ops := make([]store.Op, len(batch))
		for i, r := range batch {
			ops[i] = store.UpdateOp(r.pod)
		}
		err := b.st.Txn(ctx, ops...)
		if err == nil || !(errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)) {
			for _, r := range batch {
				r.done <- err
			}
			return
		}
	}
	for _, r := range batch {
		r.done <- b.st.Update(ctx, r.pod)
	}
}
