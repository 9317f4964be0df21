package gitsync

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/admission"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// write applies the changes in as few transactions as the limits allow,
// wave after wave with hooks and health checks between them (sequence), and
// fills in res.
func (s *Syncer) write(ctx context.Context, res *Result, changes []*Change, quotas map[string][]store.Object, hooks []*desired) error {
	sortChanges(changes)
	var writes, deletes []*Change
	for _, c := range changes {
		switch c.Action {
		case Unchanged:
			res.Unchanged++
			continue
		case Delete:
			deletes = append(deletes, c)
		default:
			writes = append(writes, c)
		}
		if c.obj != nil {
			b, err := json.Marshal(c.obj)
			if err != nil {
				return fmt.Errorf("%w: encode %s: %v", ErrApply, c.Object, err)
			}
			c.size = len(b)
		}
		c.size += opOverhead
	}
	// Hooks run when the revision changes objects as Git says, or when a
	// crash interrupted its apply (its hooks that ran are skipped); never
	// in a resync, a rollback, or a revision that only puts back drift.
	resuming := s.pending != "" && s.pending == res.Revision.ID
	if s.noHooks || s.resync && !resuming || !resuming && !changesFromGit(changes) {
		hooks = nil
	}
	seq := &sequence{s: s, res: res, quotas: quotas, healthy: map[string]bool{},
		stages: stagesOf(changes, hooksOf(hooks, keelsonv1alpha1.HookPreApply)), deletes: deletes,
		post: hooksOf(hooks, keelsonv1alpha1.HookPostApply), onFailure: hooksOf(hooks, keelsonv1alpha1.HookOnFailure)}
	if err := seq.run(ctx); err != nil {
		return err
	}
	for _, c := range changes {
		res.Changes = append(res.Changes, *c)
	}
	return nil
}

// changesFromGit reports whether any change is Git's own, not drift put
// back.
func changesFromGit(changes []*Change) bool {
	for _, c := range changes {
		if c.Action != Unchanged && !c.Drift {
			return true
		}
	}
	return false
}

// writeChunk lands one transaction of changes and counts them in res.
func (s *Syncer) writeChunk(ctx context.Context, res *Result, ch []*Change) error {
	ops := make([]store.Op, len(ch))
	for j, c := range ch {
		ops[j] = op(c)
	}
	if err := s.Store.Txn(ctx, ops...); err != nil {
		return err
	}
	res.Transactions++
	if s.afterTxn != nil {
		s.afterTxn(res.Transactions)
	}
	for _, c := range ch {
		c.done = true
		switch c.Action {
		case Create:
			res.Created++
		case Update, Replace:
			res.Updated++
			if c.Drift {
				res.DriftCorrected++
			}
		case Delete:
			res.Deleted++
		}
	}
	return nil
}

// recreate creates again the objects of ch that were replaced: deleted in
// their transaction, created in one of their own (etcd writes a key once a
// transaction). A crash in between leaves them absent, and the next sync
// creates them.
func (s *Syncer) recreate(ctx context.Context, res *Result, ch []*Change) error {
	var again []store.Op
	for _, c := range ch {
		if c.Action == Replace {
			again = append(again, store.CreateOp(c.obj))
		}
	}
	if len(again) == 0 {
		return nil
	}
	if err := s.Store.Txn(ctx, again...); err != nil {
		return fmt.Errorf("%w: revision %s: the objects to replace are deleted but not created again (the next sync creates them): %w",
			ErrApply, res.Revision.Short(), err)
	}
	res.Transactions++
	res.Replaced += len(again)
	return nil
}

// namespace is the namespace of the change's object.
func (c *Change) namespace() string {
	if c.obj != nil {
		return c.obj.GetNamespace()
	}
	return c.cur.GetNamespace()
}

// opOverhead estimates what one op adds to a transaction besides the object:
// its key three times (compare, write, read-back on failure), the store's
// metadata and the protobuf framing.
const opOverhead = 512

// chunk splits the ordered changes into transactions within MaxTxnOps and
// MaxTxnBytes; an object larger than MaxTxnBytes goes alone. The store's
// own operations (a leader's fence) are left room within MaxTxnOps, and so
// are admission's: for each namespace of a transaction whose objects a
// quota may count, one write per quota of the namespace (quotas, as the
// store holds them), or one condition where it has none.
func (s *Syncer) chunk(cs []*Change, quotas map[string][]store.Object) [][]*Change {
	maxOps, maxBytes := s.MaxTxnOps, s.MaxTxnBytes
	if maxOps <= 0 {
		maxOps = DefaultMaxTxnOps
	}
	maxOps = max(1, maxOps-store.ReservedTxnOps)
	if maxBytes <= 0 {
		maxBytes = DefaultMaxTxnBytes
	}
	var out [][]*Change
	var cur []*Change
	size, ops := 0, 0
	namespaces := map[string]bool{}
	for _, c := range cs {
		cost := 1
		ns := c.res.Namespaced && admission.Counted(c.res)
		if ns {
			if k := c.namespace(); !namespaces[k] {
				cost += max(1, len(quotas[k]))
			}
		}
		if len(cur) > 0 && (ops+cost > maxOps || size+c.size > maxBytes) {
			out = append(out, cur)
			cur, size, ops = nil, 0, 0
			clear(namespaces)
			if ns {
				cost = 1 + max(1, len(quotas[c.namespace()]))
			}
		}
		if ns {
			namespaces[c.namespace()] = true
		}
		cur = append(cur, c)
		size += c.size
		ops += cost
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// op is the store write of one change, compare-and-swap on what the diff
// read: an object changed since then fails the transaction instead of being
// overwritten blindly.
func op(c *Change) store.Op {
	switch c.Action {
	case Create:
		return store.CreateOp(c.obj)
	case Update:
		return store.UpdateOp(c.obj)
	default:
		if len(c.cur.GetFinalizers()) > 0 {
			// As the Kubernetes API deletes: an object with finalizers is
			// marked, and goes once their controllers have removed them (a
			// claim a pod still uses, kubernetes.io/pvc-protection).
			m := c.cur.DeepCopyObject().(store.Object)
			now := metav1.Now()
			m.SetDeletionTimestamp(&now)
			return store.UpdateOp(m)
		}
		rv := c.cur.GetResourceVersion()
		return store.DeleteOp(c.res, c.cur.GetNamespace(), c.cur.GetName(), &metav1.Preconditions{ResourceVersion: &rv})
	}
}
