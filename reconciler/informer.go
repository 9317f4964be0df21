package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/keelson/keelson/store"
)

// Index names of every informer cache.
const (
	// IndexNamespace keys objects by namespace.
	IndexNamespace = cache.NamespaceIndex
	// IndexOwner keys objects by the uid of each of their owners.
	IndexOwner = "owner"
	// IndexNode keys pods by spec.nodeName (unscheduled pods by "").
	IndexNode = "node"
	// IndexLabel keys objects by each "key=value" of their labels.
	IndexLabel = "label"
	// IndexOrphan keys objects that have no controller by namespace: the
	// candidates for adoption.
	IndexOrphan = "orphan"
)

// listWatch adapts the store to client-go's ListerWatcher, so a client-go
// Reflector does list+watch, resumes from the last resourceVersion and relists
// when the store answers "too old" (410 Expired).
type listWatch struct {
	st  *store.Store
	res store.Resource
}

// objectList is the list type the Reflector extracts items from.
type objectList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []runtime.Object
}

func (l *objectList) DeepCopyObject() runtime.Object {
	out := &objectList{TypeMeta: l.TypeMeta, ListMeta: *l.ListMeta.DeepCopy()}
	for _, it := range l.Items {
		out.Items = append(out.Items, it.DeepCopyObject())
	}
	return out
}

func (lw *listWatch) List(opts metav1.ListOptions) (runtime.Object, error) {
	return lw.ListWithContext(context.Background(), opts)
}

func (lw *listWatch) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	rv := opts.ResourceVersion
	if rv == "0" {
		rv = ""
	}
	l, err := lw.st.List(ctx, lw.res, store.ListOptions{
		Limit: opts.Limit, Continue: opts.Continue, ResourceVersion: rv, Shared: true,
	})
	if err != nil {
		return nil, lw.apiError(err)
	}
	out := &objectList{ListMeta: metav1.ListMeta{ResourceVersion: l.ResourceVersion, Continue: l.Continue}}
	out.Items = make([]runtime.Object, len(l.Items))
	for i, o := range l.Items {
		out.Items[i] = o
	}
	return out, nil
}

func (lw *listWatch) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return lw.WatchWithContext(context.Background(), opts)
}

func (lw *listWatch) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := lw.st.Watch(ctx, lw.res, store.WatchOptions{ResourceVersion: opts.ResourceVersion, Shared: true})
	if err != nil {
		return nil, lw.apiError(err)
	}
	return w, nil
}

// IsWatchListSemanticsUnSupported tells the Reflector that the store's watch
// has no streaming initial list: it must list, then watch.
func (lw *listWatch) IsWatchListSemanticsUnSupported() bool { return true }

// apiError turns store errors into the API errors the Reflector acts on.
func (lw *listWatch) apiError(err error) error {
	if errors.Is(err, store.ErrTooOld) {
		return apierrors.NewResourceExpired(err.Error())
	}
	return err
}

// Informers is the set of shared informers of one controller manager: one per
// resource, each a list+watch over the store with an indexed in-memory cache.
// Objects in the caches are shared: never modify them, DeepCopy first.
type Informers struct {
	st     *store.Store
	log    *slog.Logger
	resync time.Duration
	mu     sync.Mutex
	m      map[string]cache.SharedIndexInformer
	start  context.Context
}

// NewInformers returns an empty set; resync is the period at which every
// handler sees every cached object again (0: never). client-go's own log lines
// (relists, watch restarts) go to log.
func NewInformers(st *store.Store, resync time.Duration, log *slog.Logger) *Informers {
	if log == nil {
		log = slog.Default()
	}
	return &Informers{st: st, log: log, resync: resync, m: map[string]cache.SharedIndexInformer{}}
}

// For returns the informer of res, creating it on first use. An informer asked
// for after Start is started at once.
func (f *Informers) For(res store.Resource) cache.SharedIndexInformer {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := res.GroupResource()
	if inf, ok := f.m[key]; ok {
		return inf
	}
	example, _ := res.New()
	inf := cache.NewSharedIndexInformerWithOptions(&listWatch{st: f.st, res: res}, example,
		cache.SharedIndexInformerOptions{ResyncPeriod: f.resync, Indexers: indexers(), ObjectDescription: key})
	f.m[key] = inf
	if f.start != nil {
		go inf.RunWithContext(f.start)
	}
	return inf
}

// Start runs every informer asked for so far, and those asked for later,
// until ctx ends.
func (f *Informers) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(f.log.With("component", "informer").Handler()))
	f.start = ctx
	for _, inf := range f.m {
		go inf.RunWithContext(ctx)
	}
}

// WaitForSync waits until every informer has listed once; false when ctx ended
// first.
func (f *Informers) WaitForSync(ctx context.Context) bool {
	f.mu.Lock()
	var synced []cache.InformerSynced
	for _, inf := range f.m {
		synced = append(synced, inf.HasSynced)
	}
	f.mu.Unlock()
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

func indexers() cache.Indexers {
	return cache.Indexers{
		IndexNamespace: cache.MetaNamespaceIndexFunc,
		IndexOwner: func(obj any) ([]string, error) {
			m, err := metaOf(obj)
			if err != nil {
				return nil, err
			}
			var out []string
			for _, ref := range m.GetOwnerReferences() {
				out = append(out, string(ref.UID))
			}
			return out, nil
		},
		IndexNode: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		},
		IndexOrphan: func(obj any) ([]string, error) {
			m, err := metaOf(obj)
			if err != nil || metav1.GetControllerOfNoCopy(m) != nil {
				return nil, err
			}
			return []string{m.GetNamespace()}, nil
		},
		IndexLabel: func(obj any) ([]string, error) {
			m, err := metaOf(obj)
			if err != nil {
				return nil, err
			}
			out := make([]string, 0, len(m.GetLabels()))
			for k, v := range m.GetLabels() {
				out = append(out, k+"="+v)
			}
			return out, nil
		},
	}
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

// ByIndex returns the cached objects of inf under one index value, typed.
func ByIndex[T runtime.Object](inf cache.SharedIndexInformer, index, value string) []T {
	items, _ := inf.GetIndexer().ByIndex(index, value)
	out := make([]T, 0, len(items))
	for _, it := range items {
		if o, ok := it.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

// Selected returns the cached objects of inf in namespace that sel matches.
func Selected[T runtime.Object](inf cache.SharedIndexInformer, namespace string, sel labels.Selector) []T {
	var out []T
	for _, o := range ByIndex[T](inf, IndexNamespace, namespace) {
		m, _ := any(o).(metav1.Object)
		if m != nil && sel.Matches(labels.Set(m.GetLabels())) {
			out = append(out, o)
		}
	}
	return out
}

// GetCached returns the cached object of inf at namespace/name, typed, or false.
func GetCached[T runtime.Object](inf cache.SharedIndexInformer, namespace, name string) (T, bool) {
	var zero T
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	it, ok, _ := inf.GetIndexer().GetByKey(key)
	if !ok {
		return zero, false
	}
	o, ok := it.(T)
	return o, ok
}
