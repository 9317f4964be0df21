package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// objectKind is one kind of object the pods of this node read by name:
// how to get, list and watch it.
type objectKind struct {
	name  string // the resource, for errors and logs
	new   func() runtime.Object
	get   func(ctx context.Context, c kubernetes.Interface, ns, name string) (runtime.Object, error)
	list  func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error)
	watch func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (watch.Interface, error)
}

// typedClient is the part of a typed client of client-go an objectKind
// uses, objects of type T listed as L.
type typedClient[T, L runtime.Object] interface {
	Get(ctx context.Context, name string, o metav1.GetOptions) (T, error)
	List(ctx context.Context, o metav1.ListOptions) (L, error)
	Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
}

// kindOf is the objectKind of resource name, whose client in namespace ns
// (ignored for a cluster-scoped kind) client gives.
func kindOf[T, L runtime.Object](name string, newObj func() T, client func(c kubernetes.Interface, ns string) typedClient[T, L]) *objectKind {
	return &objectKind{name: name, new: func() runtime.Object { return newObj() },
		get: func(ctx context.Context, c kubernetes.Interface, ns, name string) (runtime.Object, error) {
			return client(c, ns).Get(ctx, name, metav1.GetOptions{})
		},
		list: func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
			return client(c, ns).List(ctx, o)
		},
		watch: func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (watch.Interface, error) {
			return client(c, ns).Watch(ctx, o)
		}}
}

var (
	configMapKind = kindOf("configmaps", func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
		func(c kubernetes.Interface, ns string) typedClient[*corev1.ConfigMap, *corev1.ConfigMapList] {
			return c.CoreV1().ConfigMaps(ns)
		})
	secretKind = kindOf("secrets", func() *corev1.Secret { return &corev1.Secret{} },
		func(c kubernetes.Interface, ns string) typedClient[*corev1.Secret, *corev1.SecretList] {
			return c.CoreV1().Secrets(ns)
		})
	claimKind = kindOf("persistentvolumeclaims", func() *corev1.PersistentVolumeClaim { return &corev1.PersistentVolumeClaim{} },
		func(c kubernetes.Interface, ns string) typedClient[*corev1.PersistentVolumeClaim, *corev1.PersistentVolumeClaimList] {
			return c.CoreV1().PersistentVolumeClaims(ns)
		})
	volumeKind = kindOf("persistentvolumes", func() *corev1.PersistentVolume { return &corev1.PersistentVolume{} },
		func(c kubernetes.Interface, _ string) typedClient[*corev1.PersistentVolume, *corev1.PersistentVolumeList] {
			return c.CoreV1().PersistentVolumes()
		})
)

// objectRef names one object of a kind.
type objectRef struct {
	kind            *objectKind
	namespace, name string
}

// objectCache keeps the ConfigMaps, Secrets, claims and volumes that this
// node's pods read, each kept current by a watch of that one object (a
// field selector on its name), as the kubelet's watch-based manager does:
// a running pod's volumes are checked at every resync, and asking the API
// each time would cost it a request per pod and resync. The first read of
// an object asks the API and starts its watch; reads go to the watch's copy
// once it has listed the object, and to the API until then. An object not
// read for idle has its watch stopped. A change an established watch
// reports calls changed, so that the pods using the object sync at once
// rather than at their next resync.
type objectCache struct {
	client  kubernetes.Interface
	idle    time.Duration
	changed func(objectRef)

	mu    sync.Mutex
	ctx   context.Context // of run; nil before and after it: reads ask the API
	items map[objectRef]*watchedObject
	wg    sync.WaitGroup
}

type watchedObject struct {
	store  cache.Store
	synced func() bool
	cancel context.CancelFunc
	used   time.Time
}

// defaultObjectIdle is how long an object no pod reads keeps its watch.
const defaultObjectIdle = 5 * time.Minute

func newObjectCache(client kubernetes.Interface, idle time.Duration, changed func(objectRef)) *objectCache {
	return &objectCache{client: client, idle: idle, changed: changed, items: map[objectRef]*watchedObject{}}
}

// run serves reads from watches until ctx ends, stops the watches idle
// for long, and at the end stops them all and waits for them.
func (c *objectCache) run(ctx context.Context) {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.ctx = nil
		for ref, o := range c.items {
			o.cancel()
			delete(c.items, ref)
		}
		c.mu.Unlock()
		c.wg.Wait()
	}()
	t := time.NewTicker(max(c.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		for ref, o := range c.items {
			if time.Since(o.used) > c.idle {
				o.cancel()
				delete(c.items, ref)
			}
		}
		c.mu.Unlock()
	}
}

// get returns the object named by ref, from its watch when that has
// listed it, else from the API; a NotFound error of the API's kind when it
// does not exist. The object is shared: the caller must not modify it.
func (c *objectCache) get(ctx context.Context, ref objectRef) (runtime.Object, error) {
	c.mu.Lock()
	o := c.items[ref]
	if o == nil && c.ctx != nil {
		o = c.watch(ref)
		c.items[ref] = o
	}
	if o != nil {
		o.used = time.Now()
	}
	c.mu.Unlock()
	if o != nil && o.synced() {
		key := ref.name
		if ref.namespace != "" {
			key = ref.namespace + "/" + ref.name
		}
		obj, ok, err := o.store.GetByKey(key)
		if err == nil {
			if !ok {
				return nil, notFound(ref)
			}
			return obj.(runtime.Object), nil
		}
	}
	return ref.kind.get(ctx, c.client, ref.namespace, ref.name)
}

// watch starts the watch of ref; c.mu is held.
func (c *objectCache) watch(ref objectRef) *watchedObject {
	ctx, cancel := context.WithCancel(c.ctx)
	byName := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ref.name).String()
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			byName(&o)
			return ref.kind.list(ctx, c.client, ref.namespace, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			byName(&o)
			return ref.kind.watch(ctx, c.client, ref.namespace, o)
		},
	}
	changed := func() {
		if c.changed != nil {
			c.changed(ref)
		}
	}
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		// Watch-list semantics as the client has them (the fake clients of
		// tests have none).
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, c.client),
		ObjectType:    ref.kind.new(),
		Handler: cache.ResourceEventHandlerDetailedFuncs{
			AddFunc: func(_ any, initial bool) {
				if !initial {
					changed()
				}
			},
			UpdateFunc: func(old, obj any) {
				if resourceVersion(old) != resourceVersion(obj) {
					changed()
				}
			},
			DeleteFunc: func(any) { changed() },
		},
	})
	c.wg.Go(func() { ctrl.RunWithContext(ctx) })
	return &watchedObject{store: store, synced: ctrl.HasSynced, cancel: cancel}
}

func resourceVersion(obj any) string {
	if m, err := meta.Accessor(obj); err == nil {
		return m.GetResourceVersion()
	}
	return ""
}

// notFound is the API's NotFound error for ref.
func notFound(ref objectRef) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: ref.kind.name}, ref.name)
}

// readsObject says whether pod p reads the object of ref: through its volumes
// (at every sync) or its containers' environment (when one is created, so
// that a container waiting for a missing object starts as soon as it
// appears).
func readsObject(p *corev1.Pod, ref objectRef) bool {
	if ref.kind == volumeKind || p.Namespace != ref.namespace {
		return false // a volume is the claim's, which its pods name
	}
	for _, v := range p.Spec.Volumes {
		switch {
		case ref.kind == configMapKind && v.ConfigMap != nil && v.ConfigMap.Name == ref.name,
			ref.kind == secretKind && v.Secret != nil && v.Secret.SecretName == ref.name,
			ref.kind == claimKind && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == ref.name:
			return true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if ref.kind == configMapKind && s.ConfigMap != nil && s.ConfigMap.Name == ref.name ||
					ref.kind == secretKind && s.Secret != nil && s.Secret.Name == ref.name {
					return true
				}
			}
		}
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, e := range c.EnvFrom {
				if ref.kind == configMapKind && e.ConfigMapRef != nil && e.ConfigMapRef.Name == ref.name ||
					ref.kind == secretKind && e.SecretRef != nil && e.SecretRef.Name == ref.name {
					return true
				}
			}
			for _, e := range c.Env {
				if s := e.ValueFrom; s != nil && (ref.kind == configMapKind && s.ConfigMapKeyRef != nil && s.ConfigMapKeyRef.Name == ref.name ||
					ref.kind == secretKind && s.SecretKeyRef != nil && s.SecretKeyRef.Name == ref.name) {
					return true
				}
			}
		}
	}
	return false
}
