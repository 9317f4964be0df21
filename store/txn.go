package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
)

type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opDelete
	opAbsent // an Admitter's: no object of res in namespace
)

// Op is one write of a multi-object transaction; build it with CreateOp,
// UpdateOp or DeleteOp.
type Op struct {
	kind      opKind
	obj       Object
	res       Resource
	namespace string
	name      string
	pre       *metav1.Preconditions
}

// CreateOp creates obj; see Store.Create.
func CreateOp(obj Object) Op { return Op{kind: opCreate, obj: obj} }

// UpdateOp replaces obj if its resourceVersion is current; see Store.Update.
func UpdateOp(obj Object) Op { return Op{kind: opUpdate, obj: obj} }

// DeleteOp deletes one object, under optional preconditions; see Store.Delete.
func DeleteOp(r Resource, namespace, name string, pre *metav1.Preconditions) Op {
	return Op{kind: opDelete, res: r, namespace: namespace, name: name, pre: pre}
}

// prepared is an Op resolved to its key, comparisons and write.
type prepared struct {
	op     Op
	key    string
	value  []byte
	expect int64 // mod revision the object must have; 0 for "must not exist", -1 for "must exist"
	cur    *clientv3.GetResponse
	// old is the stored object at expect when the decode cache held it:
	// an update then needs no read, its compare-and-swap is the check.
	old   Object
	cache *decodeCache
	vals  *values
	// admitted: the op's write goes through the store's Admitter;
	// byAdmitter: the Admitter added the op.
	admitted, byAdmitter bool
}

// Create stores a new object. It sets uid, creationTimestamp, generation 1 and
// resourceVersion on obj. Errors: ErrExists, ErrInvalid, ErrUnknownKind.
func (s *Store) Create(ctx context.Context, obj Object) error {
	return s.Txn(ctx, CreateOp(obj))
}

// Update replaces the stored object with obj if obj's resourceVersion is still
// the stored one (compare-and-swap). uid and creationTimestamp are kept from the
// stored object; generation is bumped when anything but metadata and status
// changed. obj's resourceVersion is set to the new one.
// Errors: ErrNotFound, ErrConflict, ErrInvalid, ErrUnknownKind.
func (s *Store) Update(ctx context.Context, obj Object) error {
	return s.Txn(ctx, UpdateOp(obj))
}

// Delete removes one object. With preconditions, it deletes only while the
// stored object still has that uid and/or resourceVersion.
// Errors: ErrNotFound, ErrConflict, ErrInvalid, ErrUnknownKind.
func (s *Store) Delete(ctx context.Context, r Resource, namespace, name string, pre *metav1.Preconditions) error {
	return s.Txn(ctx, DeleteOp(r, namespace, name, pre))
}

// Txn applies every op in one etcd transaction: all of them land, or none does.
// Each op keeps its own compare-and-swap rule; the error names the first op
// that failed its rule. Errors: those of Create, Update and Delete.
func (s *Store) Txn(ctx context.Context, ops ...Op) (err error) {
	if len(ops) == 0 {
		return nil
	}
	start := time.Now()
	defer func() { s.metrics.observe("txn", start, err) }()

	undo := registerOps(ops)
	defer func() {
		if err != nil {
			undo()
		}
	}()
	for attempt := 0; ; attempt++ {
		again, err := s.txnOnce(ctx, ops)
		if !again {
			return err
		}
		if attempt == maxAdmitRetries {
			return fmt.Errorf("admission: %w (%d attempts)", err, attempt+1)
		}
	}
}

// txnOnce builds and commits the transaction once; again says the
// Admitter's ops lost a race and the transaction should be built anew.
func (s *Store) txnOnce(ctx context.Context, ops []Op) (again bool, err error) {
	ps := make([]*prepared, len(ops))
	seen := make(map[string]bool, len(ops))
	for i, op := range ops {
		if op.kind == opAbsent {
			return false, fmt.Errorf("%w: AbsentOp is an Admitter's", ErrInvalid)
		}
		p, err := s.prepare(op)
		if err != nil {
			return false, err
		}
		if seen[p.key] {
			return false, fmt.Errorf("%w: %s %s appears twice in one transaction", ErrInvalid, p.op.res, p.op.describe())
		}
		seen[p.key] = true
		p.admitted = s.admit != nil && s.admit.Admits(p.op.res)
		ps[i] = p
	}
	if err := s.readCurrent(ctx, ps); err != nil {
		return false, err
	}
	if s.admit != nil {
		extra, err := s.admitted(ctx, ps)
		if err != nil {
			return false, err
		}
		for _, p := range extra {
			if seen[p.key] {
				return false, fmt.Errorf("%w: admission writes %s %s, which the transaction writes too", ErrInvalid, p.op.res, p.op.describe())
			}
			seen[p.key] = true
		}
		ps = append(ps, extra...)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	var cmps []clientv3.Cmp
	var thens, elses []clientv3.Op
	for _, p := range ps {
		if p.op.kind == opAbsent {
			cmps = append(cmps, s.absentCmp(p))
			elses = append(elses, clientv3.OpGet(p.key, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1)))
			continue
		}
		if err := p.finish(now); err != nil {
			// An Admitter's op whose object changed since it was read
			// is built again.
			return p.byAdmitter && (errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound)), err
		}
		switch {
		case p.expect == 0:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(p.key), "=", 0))
		case p.expect < 0:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(p.key), ">", 0))
		default:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p.key), "=", p.expect))
		}
		if p.op.kind == opDelete {
			thens = append(thens, clientv3.OpDelete(p.key))
		} else {
			thens = append(thens, clientv3.OpPut(p.key, string(p.value)))
		}
		elses = append(elses, clientv3.OpGet(p.key, clientv3.WithKeysOnly()))
	}
	f, fenced := fenceOf(ctx)
	if fenced {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev))
		elses = append(elses, clientv3.OpGet(f.key, clientv3.WithKeysOnly()))
	}
	resp, err := s.client.Txn(ctx).If(cmps...).Then(thens...).Else(elses...).Commit()
	if err != nil {
		return false, fmt.Errorf("etcd transaction of %d ops: %w", len(ops), err)
	}
	if !resp.Succeeded {
		if fenced {
			if kvs := resp.Responses[len(ps)].GetResponseRange().Kvs; len(kvs) == 0 || kvs[0].CreateRevision != f.rev {
				return false, fmt.Errorf("%w: the leadership term that made this transaction of %d ops has ended", ErrNotLeader, len(ops))
			}
		}
		return failedOp(ps, resp)
	}
	s.noteCustom(ps)
	rv := formatRV(resp.Header.Revision)
	for _, p := range ps {
		switch {
		case p.op.kind == opAbsent:
		case p.op.obj != nil:
			p.op.obj.SetResourceVersion(rv)
		default:
			s.cache.forget(p.key)
		}
	}
	return false, nil
}

func (s *Store) prepare(op Op) (*prepared, error) {
	if op.obj != nil {
		r, err := ResourceOf(op.obj)
		if err != nil {
			return nil, err
		}
		op.res, op.namespace, op.name = r, op.obj.GetNamespace(), op.obj.GetName()
	}
	if op.kind == opAbsent {
		if !op.res.Namespaced || op.namespace == "" {
			return nil, fmt.Errorf("%w: AbsentOp of %s needs a namespace", ErrInvalid, op.res)
		}
		return &prepared{op: op, key: s.rangePrefix(op.res, op.namespace), cache: s.cache, vals: s.vals}, nil
	}
	key, err := s.key(op.res, op.namespace, op.name)
	if err != nil {
		return nil, err
	}
	p := &prepared{op: op, key: key, cache: s.cache, vals: s.vals}
	switch op.kind {
	case opCreate:
		if op.obj.GetResourceVersion() != "" {
			return nil, fmt.Errorf("%w: create %s %s: resourceVersion must be empty", ErrInvalid, op.res, op.describe())
		}
	case opUpdate:
		rv, err := parseRV(op.obj.GetResourceVersion())
		if err != nil || rv == 0 {
			return nil, fmt.Errorf("%w: update %s %s: resourceVersion %q is not one the store gave", ErrInvalid, op.res, op.describe(), op.obj.GetResourceVersion())
		}
		p.expect = rv
	case opDelete:
		p.expect = -1
		if op.pre != nil && op.pre.ResourceVersion != nil {
			rv, err := parseRV(*op.pre.ResourceVersion)
			if err != nil || rv == 0 {
				return nil, fmt.Errorf("%w: delete %s %s: precondition resourceVersion %q", ErrInvalid, op.res, op.describe(), *op.pre.ResourceVersion)
			}
			p.expect = rv
		}
	}
	return p, nil
}

// needsCurrent says whether the op must see the stored object before writing:
// updates keep uid and creationTimestamp and compute generation from it; a uid
// precondition is checked against it.
func (p *prepared) needsCurrent() bool {
	return p.op.kind == opUpdate || (p.op.kind == opDelete && (p.admitted || p.op.pre != nil && p.op.pre.UID != nil))
}

// readCurrent fetches, in one consistent read, the stored objects of the ops
// that need them.
func (s *Store) readCurrent(ctx context.Context, ps []*prepared) error {
	var need []*prepared
	var gets []clientv3.Op
	for _, p := range ps {
		if p.op.kind == opUpdate {
			// The object at the revision the caller read is the same
			// wherever it is read from; if it is no longer the stored
			// one, the transaction's compare fails as a read would.
			if old, ok := p.cache.at(p.op.res, p.key, p.expect); ok {
				p.old = old
				continue
			}
		}
		if p.needsCurrent() {
			need = append(need, p)
			gets = append(gets, clientv3.OpGet(p.key))
		}
	}
	if len(need) == 0 {
		return nil
	}
	resp, err := s.client.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return fmt.Errorf("etcd read of %d objects: %w", len(gets), err)
	}
	for i, p := range need {
		p.cur = (*clientv3.GetResponse)(resp.Responses[i].GetResponseRange())
	}
	return nil
}

// finish checks the op against the stored object read for it and fills in the
// metadata the store owns, then encodes the value to write.
func (p *prepared) finish(now metav1.Time) error {
	op := p.op
	if p.needsCurrent() {
		old, err := p.stored()
		if err != nil {
			return err
		}
		if op.kind == opDelete {
			if op.pre != nil && op.pre.UID != nil && old.GetUID() != *op.pre.UID {
				return fmt.Errorf("%s %s: %w: precondition uid %s, stored uid %s", op.res, op.describe(), ErrConflict, *op.pre.UID, old.GetUID())
			}
			if p.expect < 0 {
				p.expect = p.cur.Kvs[0].ModRevision // deletes always read
			}
			return nil
		}
		if uid := op.obj.GetUID(); uid != "" && uid != old.GetUID() {
			return fmt.Errorf("%s %s: %w: uid %s, stored uid %s", op.res, op.describe(), ErrConflict, uid, old.GetUID())
		}
		op.obj.SetUID(old.GetUID())
		op.obj.SetCreationTimestamp(old.GetCreationTimestamp())
		op.obj.SetGeneration(old.GetGeneration())
		if specChanged(old, op.obj) {
			op.obj.SetGeneration(old.GetGeneration() + 1)
		}
		value, err := encode(op.res, op.obj)
		if err != nil {
			return err
		}
		if p.value, err = p.vals.seal(op.res, p.key, value); err != nil {
			return err
		}
		return nil
	}
	if op.kind == opCreate {
		op.obj.SetUID(types.UID(uuid.NewUUID()))
		op.obj.SetCreationTimestamp(now)
		op.obj.SetGeneration(1)
		value, err := encode(op.res, op.obj)
		if err != nil {
			return err
		}
		if p.value, err = p.vals.seal(op.res, p.key, value); err != nil {
			return err
		}
	}
	return nil
}

// failedOp finds which op's rule did not hold, from the keys-only reads of the
// transaction's else branch; again is true when it was an Admitter's op.
func failedOp(ps []*prepared, resp *clientv3.TxnResponse) (again bool, err error) {
	for i, p := range ps {
		kvs := resp.Responses[i].GetResponseRange().Kvs
		exists := len(kvs) > 0
		if p.op.kind == opAbsent {
			if exists {
				return true, fmt.Errorf("%w: %s appeared in namespace %s meanwhile", ErrConflict, p.op.res, p.op.namespace)
			}
			continue
		}
		switch {
		case p.expect == 0 && exists:
			err = fmt.Errorf("%s %s: %w", p.op.res, p.op.describe(), ErrExists)
		case p.expect != 0 && !exists:
			err = fmt.Errorf("%s %s: %w", p.op.res, p.op.describe(), ErrNotFound)
		case p.expect > 0 && kvs[0].ModRevision != p.expect:
			err = fmt.Errorf("%s %s: %w: resourceVersion %d is stale, the stored one is %d", p.op.res, p.op.describe(), ErrConflict, p.expect, kvs[0].ModRevision)
		default:
			continue
		}
		return p.byAdmitter, err
	}
	return false, fmt.Errorf("%w: transaction of %d ops did not apply", ErrConflict, len(ps))
}

func (op Op) describe() string {
	if op.namespace == "" {
		return op.name
	}
	return op.namespace + "/" + op.name
}

func formatRV(rev int64) string { return strconv.FormatInt(rev, 10) }

func parseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: resourceVersion %q is not a non-negative integer", ErrInvalid, rv)
	}
	return n, nil
}
