package gitsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/gitsync/render"
	"github.com/keelson/keelson/gitsync/sops"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// Defaults of a Syncer.
const (
	DefaultNamespace = "default"
	// DefaultMaxTxnOps is etcd's own default --max-txn-ops, so that a sync
	// works against any etcd; keelson's embedded etcd allows 16,384.
	DefaultMaxTxnOps = 128
	// DefaultMaxTxnBytes stays under etcd's default request limit (1.5 MiB).
	DefaultMaxTxnBytes = 1 << 20
)

// Syncer applies revisions of one source to the store: one sync, one name.
// A Syncer is not safe for concurrent Apply calls; the Loop serializes them.
type Syncer struct {
	// Name is the sync's name, the value of LabelSource on its objects.
	// Required; a valid label value.
	Name string
	// Store is where objects are written. Required.
	Store *store.Store
	// Schema validates the manifests. Required.
	Schema *schema.Schema
	// Cache keeps validation results of unchanged files across revisions.
	// Optional.
	Cache *schema.Cache
	// Path is the folder of the repository to read, slash-separated; empty or
	// "." reads the whole tree.
	Path string
	// TargetNamespace is given to namespaced objects that name none;
	// DefaultNamespace when empty.
	TargetNamespace string
	// Prune deletes objects of this sync that left Git, except those
	// annotated keelson.dev/prune: disabled.
	Prune bool
	// AllowEmpty lets a revision with no objects delete every object of the
	// sync; without it such a revision (an empty path, a wrong branch) is
	// refused.
	AllowEmpty bool
	// MaxTxnOps and MaxTxnBytes bound one etcd transaction; a revision that
	// does not fit is applied in several, in kind order. Zero takes
	// DefaultMaxTxnOps and DefaultMaxTxnBytes.
	MaxTxnOps   int
	MaxTxnBytes int
	// ServiceCIDR and NodePorts are the ranges the service allocator gives
	// cluster IPs and node ports from: a revision whose Services cannot be
	// served from them (an address or port out of range, taken, asked for
	// twice, or none left) is refused before anything is written, like an
	// invalid one. A zero value turns its checks off.
	ServiceCIDR servicenet.CIDR
	NodePorts   servicenet.PortRange
	// Renderer renders the kustomizations, Helm charts and CUE packages of
	// each revision, remembering the units whose inputs did not change.
	// Optional: the Syncer makes one on first use.
	Renderer *render.Renderer
	// Decryption holds the age keys that open the revision's files
	// encrypted with sops; nil refuses every encrypted file.
	Decryption *sops.Keys
	// RequireEncryptedSecrets refuses a revision with a Secret in a file
	// that is not encrypted with sops.
	RequireEncryptedSecrets bool
	// Wait makes an apply succeed only when every object of the revision
	// is Healthy within Timeout (ErrHealth otherwise).
	Wait bool
	// Timeout bounds the health check of each wave and of Wait, and each
	// hook's run; DefaultTimeout when zero.
	Timeout time.Duration
	// Logs reads the log of a failed hook for the status; nil shows none.
	Logs LogReader
	// Log gets a line per hook run and per problem that does not fail the
	// apply. Optional.
	Log *slog.Logger

	renderOnce sync.Once
	// noHooks: a rollback, whose revision's hooks ran when it was first
	// applied. resync: the loop applies the revision it applied last
	// again (drift correction), which runs no hook and, when it writes
	// nothing, waits for no health.
	noHooks, resync bool
	ran             ranHooks      // hooks that succeeded for a revision (staged.go)
	pollEvery       time.Duration // how often gates and hooks read the store (defaultPoll)

	mem         *memory     // what the last applies left in the store (memory.go)
	pending     string      // the pending revision as last written or read (staged.go)
	beforeWrite func()      // test hook: runs between the diff and the write
	afterTxn    func(n int) // test hook: runs after the n-th transaction of a revision
}

// Result is what one Apply did.
type Result struct {
	Revision                             Revision
	Created, Updated, Deleted, Unchanged int
	// Replaced counts the updates that deleted the object and created it
	// again (AnnotationReplaceOnChange); they are in Updated too.
	Replaced int
	// Changes lists every object of the revision and every deletion, in the
	// order they were applied; Unchanged entries last.
	Changes []Change
	// Errors are the problems that stopped the revision, each with file:line
	// where there is one.
	Errors schema.ErrorList
	// Transactions is how many etcd transactions the writes took.
	Transactions int
	// DriftCorrected counts the updates that put back an object changed in
	// the store behind Git's back (Change.Drift); zero in the first Apply of
	// a Syncer, which has not seen what it applied before.
	DriftCorrected int
	// Autoscaled names the objects whose replicas an autoscaler of the
	// revision owns, "Kind namespace/name (HorizontalPodAutoscaler name)".
	Autoscaled []string
	// HookErrors are the failures of on-failure hooks, which do not change
	// the outcome.
	HookErrors []string
}

func (s *Syncer) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Syncer) targetNamespace() string {
	if s.TargetNamespace == "" {
		return DefaultNamespace
	}
	return s.TargetNamespace
}

// Apply makes the store hold revision rev, whose files are fsys: it loads and
// validates every manifest under Path, and when all are valid and no other
// sync owns any of the objects, creates, updates and (with Prune) deletes this
// sync's objects so that they match. Objects that already match are not
// written, so their resourceVersion stays.
//
// Atomicity: when the changes fit in one transaction (MaxTxnOps, MaxTxnBytes)
// they land together or not at all. Otherwise they are applied in several
// transactions, creations and updates first in kind order (namespaces first),
// then deletions in reverse kind order; each transaction is atomic, and a
// failure leaves the earlier ones applied and returns ErrApply. The next Apply
// computes the diff afresh from the store, so it finishes the revision
// without manual action.
//
// The Syncer remembers, for each object it applied, the file's content and
// the resourceVersion it left in the store: an object for which neither
// changed since is not compared again, and an update of an object whose file
// did not change is drift (Change.Drift). The memory is the process's own; a
// new Syncer compares everything once and reports no drift.
//
// A write that loses a compare-and-swap race (a controller wrote a status
// between the diff and the write) is retried from the start, a few times.
//
// Errors: ErrInvalid (Result.Errors holds every problem with file:line;
// nothing was written), ErrApply, or ctx.Err().
func (s *Syncer) Apply(ctx context.Context, rev Revision, fsys fs.FS) (*Result, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.apply(ctx, rev, fsys)
		if attempt == maxAttempts || !errors.Is(err, ErrApply) || !lostRace(err) {
			return res, err
		}
	}
}

// maxAttempts bounds the retries of Apply after lost races.
const maxAttempts = 3

func lostRace(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound)
}

func (s *Syncer) apply(ctx context.Context, rev Revision, fsys fs.FS) (*Result, error) {
	res := &Result{Revision: rev}
	var roots []string
	if s.Path != "" {
		roots = []string{s.Path}
	}
	var opts []schema.Option
	if s.Cache != nil {
		// Shared: most objects are only compared, and those written are
		// copied first (finish).
		opts = append(opts, schema.WithCache(s.Cache), schema.WithShared())
	}
	crds, err := s.clusterCRDs(ctx)
	if err != nil {
		return res, err
	}
	opts = append(opts, schema.WithCustomResources(crds...))
	fsys, encrypted, problems := s.decrypt(fsys, roots, false)
	if len(problems) > 0 {
		problems.Sort()
		res.Errors = problems
		return res, fmt.Errorf("%w: revision %s: %d files cannot be decrypted, nothing applied:\n%w", ErrDecrypt, rev.Short(), len(problems), problems)
	}
	objs, problems, err := s.load(ctx, fsys, roots, opts...)
	if err != nil {
		return res, err
	}
	if s.RequireEncryptedSecrets {
		problems = append(problems, plainSecrets(objs, encrypted)...)
	}
	if len(problems) > 0 {
		hideSecretValues(problems)
		return res, s.invalid(res, rev, problems)
	}
	if problems, err := s.registerCustom(ctx, objs); err != nil {
		return res, err
	} else if len(problems) > 0 {
		return res, s.invalid(res, rev, problems)
	}
	list, byKey, problems := s.collect(objs, rev, s.Cache != nil)
	if len(problems) > 0 {
		return res, s.invalid(res, rev, problems)
	}
	list, hooks := splitHooks(list, byKey)
	markAutoscaled(byKey, nil)
	res.Autoscaled = autoscaledOf(byKey)
	hashContents(fsys, list)
	owned, err := s.owned(ctx)
	if err != nil {
		return res, fmt.Errorf("%w: list objects of sync %s: %v", ErrApply, s.Name, err)
	}
	changes, problems, err := s.diff(ctx, list, byKey, owned)
	if err != nil {
		return res, err
	}
	more, err := s.checkServices(ctx, fsys, changes)
	if err != nil {
		return res, err
	}
	problems = append(problems, more...)
	quotas, err := s.storedQuotas(ctx)
	if err != nil {
		return res, err
	}
	if more, err = s.checkQuotas(ctx, byKey, owned, quotas); err != nil {
		return res, err
	}
	problems = append(problems, more...)
	if len(list) == 0 && len(owned) > 0 && !s.AllowEmpty {
		problems = append(problems, &schema.Error{File: s.pathOrRoot(), Msg: fmt.Sprintf(
			"no objects under %s, which would delete all %d objects of sync %s; check the path and ref, or set allowEmpty", s.pathOrRoot(), len(owned), s.Name)})
	}
	if len(problems) > 0 {
		return res, s.invalid(res, rev, problems)
	}
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	err = s.write(ctx, res, changes, quotas, hooks)
	s.remember(changes)
	return res, err
}

func (s *Syncer) pathOrRoot() string {
	if s.Path == "" {
		return "."
	}
	return s.Path
}

func (s *Syncer) invalid(res *Result, rev Revision, problems schema.ErrorList) error {
	problems.Sort()
	res.Errors = problems
	return fmt.Errorf("%w: revision %s: %d problems, nothing applied:\n%w", ErrInvalid, rev.Short(), len(problems), problems)
}

// owned lists every object labelled as this sync's. The objects are the
// store's shared copies: never modify them. The kinds are listed a few at a
// time, since most lists are of kinds the sync has none of and cost a round
// trip each.
func (s *Syncer) owned(ctx context.Context) (map[key]store.Object, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelSource: s.Name})
	rs := append(store.Resources(), store.CustomResources()...)
	lists := make([]*store.List, len(rs))
	errs := make([]error, len(rs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			lists[i], errs[i] = s.Store.List(ctx, r, store.ListOptions{Selector: sel, Shared: true})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := 0
	for _, l := range lists {
		n += len(l.Items)
	}
	out := make(map[key]store.Object, n)
	for i, l := range lists {
		res := rs[i].GroupResource()
		for _, o := range l.Items {
			if isHook(o) {
				continue // run by the sync, never pruned as left Git
			}
			out[key{res, o.GetNamespace(), o.GetName()}] = o
		}
	}
	return out, nil
}

// diff plans every change of the revision. Objects the sync does not own yet
// are read from the store, and taken or refused (adoptable).
func (s *Syncer) diff(ctx context.Context, list []*desired, byKey map[key]*desired, owned map[key]store.Object) ([]*Change, schema.ErrorList, error) {
	curs := make([]store.Object, len(list))
	var fresh []*desired
	var freshAt []int
	for i, d := range list {
		if curs[i] = owned[d.key]; curs[i] == nil {
			fresh, freshAt = append(fresh, d), append(freshAt, i)
		}
	}
	existing, err := s.readAll(ctx, fresh)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrApply, err)
	}
	var problems schema.ErrorList
	changes := make([]*Change, 0, len(list))
	adopted := make([]bool, len(list))
	inGit := len(list) - len(fresh) // owned objects that are in the revision
	for j, d := range fresh {
		cur := existing[j]
		if cur == nil {
			continue
		}
		replace, problem := s.adoptable(d, cur)
		if problem != nil {
			problems = append(problems, problem)
			continue
		}
		owned[d.key] = cur
		adopted[freshAt[j]] = true
		inGit++
		c, err := s.plan(d, cur, true)
		if err != nil {
			return nil, nil, err
		}
		if replace {
			c.Action, c.obj = Replace, d.obj
		}
		changes = append(changes, c)
	}
	for i, d := range list {
		if adopted[i] {
			continue
		}
		c, err := s.plan(d, curs[i], false)
		if err != nil {
			return nil, nil, err
		}
		if _, isService := d.obj.(*corev1.Service); c.Action == Update && !isService { // checkServices says more of a Service's address
			if fields := immutableChanges(c.cur, d.obj); len(fields) > 0 {
				if d.obj.GetAnnotations()[AnnotationReplaceOnChange] != "true" {
					problems = append(problems, errAt(d.src, fmt.Sprintf(
						"%s: %s cannot change once the object exists; annotate it %s: \"true\" to delete it and create it again, or give it a new name",
						d.key, strings.Join(fields, ", "), AnnotationReplaceOnChange)))
					continue
				}
				c.Action, c.obj = Replace, d.obj
			}
		}
		changes = append(changes, c)
	}
	if s.Prune && len(owned) > inGit {
		for k, cur := range owned {
			if byKey[k] != nil || cur.GetAnnotations()[AnnotationPrune] == "disabled" || cur.GetDeletionTimestamp() != nil {
				continue // in Git, kept on purpose, or on its way out already
			}
			r, err := store.ResourceByName(k.res)
			if err != nil {
				return nil, nil, err
			}
			changes = append(changes, &Change{Action: Delete, Object: k.String(), Origin: cur.GetAnnotations()[AnnotationOrigin],
				res: r, cur: cur, order: kindOrder(r.GVK.Kind)})
		}
	}
	return changes, problems, nil
}

// adoptable says whether the sync may take an object of the revision that
// exists but is not its own yet: one nobody owns (made before keelson
// managed it) is adopted; the object a hook of this sync left takes the
// place of the hook (replace: deleted and created again); one owned by
// another sync, a controller or keelson's control plane is a problem at
// the object's file:line.
func (s *Syncer) adoptable(d *desired, cur store.Object) (replace bool, problem *schema.Error) {
	if other := cur.GetLabels()[LabelSource]; other == s.Name && isHook(cur) {
		return true, nil
	} else if other != "" {
		return false, errAt(d.src, fmt.Sprintf("%s is already owned by sync %q (from its file %s); sync %q cannot take it: remove it from one of the two",
			d.key, other, cur.GetAnnotations()[AnnotationOrigin], s.Name))
	}
	if refs := cur.GetOwnerReferences(); len(refs) > 0 {
		return false, errAt(d.src, fmt.Sprintf("%s exists and is managed by %s %s; give the object from Git another name",
			d.key, refs[0].Kind, refs[0].Name))
	}
	if _, ok := cur.GetLabels()[keelsonv1alpha1.LabelControlPlane]; ok {
		return false, errAt(d.src, fmt.Sprintf("%s is made by keelson's control plane (label %s) and cannot come from Git; remove it from the manifests",
			d.key, keelsonv1alpha1.LabelControlPlane))
	}
	return false, nil
}

// plan is the change of one object: unchanged without comparing when
// neither its file nor the store's copy changed since the sync last saw them
// match, else what comparing them says. An update of an object whose file is
// as the sync last applied it is drift.
func (s *Syncer) plan(d *desired, cur store.Object, adopt bool) (*Change, error) {
	if !adopt && s.unchanged(d, cur) {
		return &Change{Action: Unchanged, Object: d.key.String(), Origin: d.origin, res: d.res, cur: cur, order: kindOrder(d.res.GVK.Kind), wave: d.wave, d: d}, nil
	}
	s.finish(d)
	c, err := plan(d, cur, adopt)
	if err != nil {
		return nil, err
	}
	if c.Action == Update {
		_, c.Drift = s.remembered(d)
	}
	c.d = d
	return c, nil
}

// readAll reads the objects of ds from the store, nil where absent, a few at a
// time.
func (s *Syncer) readAll(ctx context.Context, ds []*desired) ([]store.Object, error) {
	out := make([]store.Object, len(ds))
	errs := make([]error, len(ds))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o, err := d.res.New()
			if err == nil {
				err = s.Store.Get(ctx, d.key.namespace, d.key.name, o)
			}
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				errs[i] = err
			default:
				out[i] = o
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// sortChanges puts writes first, by wave and in kind order within a wave,
// then deletions in reverse kind order, then the unchanged; by object name
// within a kind, so runs repeat.
func sortChanges(cs []*Change) {
	rank := func(c *Change) (int, int) {
		switch c.Action {
		case Create, Update, Replace:
			return 0, c.wave*100 + c.order
		case Delete:
			return 1, 100 - c.order
		}
		return 2, 0
	}
	slices.SortStableFunc(cs, func(a, b *Change) int {
		ga, ra := rank(a)
		gb, rb := rank(b)
		return cmp.Or(cmp.Compare(ga, gb), cmp.Compare(ra, rb), cmp.Compare(a.Object, b.Object))
	})
}
