package store

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrForbidden means an Admitter refused a write: a quota it would exceed, a
// limit it breaks. The error says which and by how much.
var ErrForbidden = errors.New("store: forbidden")

// Change is one write of a transaction as an Admitter sees it: Old is the
// stored object (nil for a create), New the object to store (nil for a
// delete). Old is the store's shared copy: never modify it. New may be
// changed by the Admitter (defaults it sets) before it is encoded.
type Change struct {
	Resource  Resource
	Namespace string
	Old, New  Object
}

// An Admitter sees every transaction's writes of the resources it admits
// before they are committed (quotas, limit ranges). It may refuse the
// transaction (wrap ErrForbidden), change the objects created, and add ops:
// those land in the same etcd transaction as the writes or not at all, so
// what it counts (a quota's usage) stays exact under concurrent writers.
// When one of its ops fails its compare (another writer changed what it
// read), the store calls it again on the same writes and retries.
type Admitter interface {
	// Admits says whether writes of r go through Admit.
	Admits(r Resource) bool
	// Admit is given the transaction's changes of admitted resources.
	Admit(ctx context.Context, changes []Change) ([]Op, error)
}

// SetAdmitter has every later transaction go through a. Call it before the
// store is used; nil removes it.
func (s *Store) SetAdmitter(a Admitter) { s.admit = a }

// AbsentOp holds the transaction to there being no object of r in namespace
// (an Admitter's "no quota here" when it found none): it writes nothing.
func AbsentOp(r Resource, namespace string) Op {
	return Op{kind: opAbsent, res: r, namespace: namespace}
}

// maxAdmitRetries bounds how often a transaction is built again after an
// Admitter's op lost a race: each loss means another writer made progress.
const maxAdmitRetries = 64

// admitted gives the Admitter the changes of ps it admits, with the stored
// objects read for them, and prepares the ops it adds.
func (s *Store) admitted(ctx context.Context, ps []*prepared) ([]*prepared, error) {
	var changes []Change
	for _, p := range ps {
		if !p.admitted {
			continue
		}
		c := Change{Resource: p.op.res, Namespace: p.op.namespace}
		if p.op.kind != opCreate {
			old, err := p.stored()
			if err != nil {
				return nil, err
			}
			c.Old = old
		}
		if p.op.kind != opDelete {
			c.New = p.op.obj
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		return nil, nil
	}
	ops, err := s.admit.Admit(ctx, changes)
	if err != nil {
		return nil, err
	}
	extra := make([]*prepared, 0, len(ops))
	for _, op := range ops {
		p, err := s.prepare(op)
		if err != nil {
			return nil, fmt.Errorf("admission: %w", err)
		}
		p.byAdmitter = true
		extra = append(extra, p)
	}
	if err := s.readCurrent(ctx, extra); err != nil {
		return nil, err
	}
	return extra, nil
}

// stored is the object an update or delete replaces, as read for it; a
// missing one is ErrNotFound.
func (p *prepared) stored() (Object, error) {
	if p.old != nil {
		return p.old, nil
	}
	if p.cur == nil || len(p.cur.Kvs) == 0 {
		return nil, fmt.Errorf("%s %s: %w", p.op.res, p.op.describe(), ErrNotFound)
	}
	kv := p.cur.Kvs[0]
	if p.op.kind == opUpdate && kv.ModRevision != p.expect {
		return nil, fmt.Errorf("%s %s: %w: resourceVersion %d is stale, the stored one is %d", p.op.res, p.op.describe(), ErrConflict, p.expect, kv.ModRevision)
	}
	return p.cache.get(p.op.res, kv, true)
}

// absentCmp is an AbsentOp's compare: no key under the namespace's prefix.
func (s *Store) absentCmp(p *prepared) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(p.key), "=", 0).WithPrefix()
}
