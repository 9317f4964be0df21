package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/keelson/keelson/store"
)

// Result tells the worker what to do with a key after a successful Reconcile.
type Result struct {
	// RequeueAfter, when positive, reconciles the key again after this long
	// even if nothing changes (deadlines, minReadySeconds).
	RequeueAfter time.Duration
}

// Reconciler brings one object to its desired state. Reconcile is
// level-triggered: it re-reads everything it needs by key every time, never
// trusts the event that queued it, and is idempotent. A returned error retries
// the key with per-key exponential backoff; an error wrapped by Terminal is not
// retried (the reconciler has already marked the object's condition).
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// ReconcileFunc adapts a function to Reconciler.
type ReconcileFunc func(ctx context.Context, key string) (Result, error)

// Reconcile calls f.
func (f ReconcileFunc) Reconcile(ctx context.Context, key string) (Result, error) { return f(ctx, key) }

type terminalError struct{ err error }

func (e terminalError) Error() string { return e.err.Error() }
func (e terminalError) Unwrap() error { return e.err }

// Terminal marks err as one that retrying cannot fix (an invalid spec): the
// worker logs it once and drops the key until the object changes again.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err}
}

// IsTerminal reports whether err was marked with Terminal.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}

// QueueOptions tunes a controller's work queue.
type QueueOptions struct {
	// Workers reconcile keys in parallel; a key is never given to two at
	// once. Default 5, as Kubernetes runs its ReplicaSet and Deployment controllers.
	Workers int
	// BaseDelay and MaxDelay bound the per-key exponential backoff of failed
	// keys. Defaults 5ms and 1000s, client-go's.
	BaseDelay, MaxDelay time.Duration
	// QPS and Burst bound the overall retry rate (a token bucket shared by all
	// keys). Defaults 50 and 300.
	QPS   float64
	Burst int
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 5 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 1000 * time.Second
	}
	if o.QPS <= 0 {
		o.QPS = 50
	}
	if o.Burst <= 0 {
		o.Burst = 300
	}
	return o
}

// Controller runs a Reconciler over a work queue of "namespace/name" keys
// (client-go's workqueue: duplicate keys collapse while waiting, a key is
// processed by one worker at a time, failures back off per key).
type Controller struct {
	name  string
	rec   Reconciler
	queue workqueue.TypedRateLimitingInterface[string]
	opts  QueueOptions
	log   *slog.Logger
	m     controllerMetrics
	// OnTerminal, when set, is called for a key whose Reconcile returned a
	// terminal error, e.g. to write a Warning event.
	OnTerminal func(ctx context.Context, key string, err error)
}

// NewController returns a controller named name (used in logs and metrics).
func NewController(name string, rec Reconciler, opts QueueOptions, log *slog.Logger) *Controller {
	opts = opts.withDefaults()
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](opts.BaseDelay, opts.MaxDelay),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(opts.QPS), opts.Burst)},
	)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[string]{
		Name: name, MetricsProvider: queueMetrics{},
	})
	if log == nil {
		log = slog.Default()
	}
	return &Controller{name: name, rec: rec, queue: q, opts: opts, log: log.With("controller", name), m: newControllerMetrics(name)}
}

// Name returns the controller's name.
func (c *Controller) Name() string { return c.name }

// Enqueue adds a key to reconcile.
func (c *Controller) Enqueue(key string) { c.queue.Add(key) }

// EnqueueAfter adds a key to reconcile after d.
func (c *Controller) EnqueueAfter(key string, d time.Duration) { c.queue.AddAfter(key, d) }

// EnqueueObject adds the key of an object (or of a deletion tombstone).
func (c *Controller) EnqueueObject(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		c.queue.Add(key)
	}
}

// Len returns how many keys wait in the queue.
func (c *Controller) Len() int { return c.queue.Len() }

// Run starts the workers and blocks until ctx ends; then it shuts the queue
// down and waits for the workers to finish their current key.
func (c *Controller) Run(ctx context.Context) {
	// Added and taken away rather than set: the next term's controller of
	// this name may start before this one has stopped.
	c.m.workers.Add(float64(c.opts.Workers))
	defer c.m.workers.Sub(float64(c.opts.Workers))
	defer stopQueueMetrics(c.name)
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDownWithDrain()
	wg.Wait()
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if ctx.Err() != nil {
		return true
	}
	res, err := c.reconcile(ctx, key)
	switch {
	case err == nil:
		c.queue.Forget(key)
		if res.RequeueAfter > 0 {
			c.m.requeueAfter.Inc()
			c.queue.AddAfter(key, res.RequeueAfter)
		} else {
			c.m.success.Inc()
		}
	case ctx.Err() != nil:
		// Cut short by the end of the term: not the controller's failure.
	case IsTerminal(err):
		c.m.terminal.Inc()
		c.m.errors.Inc()
		c.queue.Forget(key)
		c.log.Error("reconcile failed, not retrying", "key", key, "err", err)
		if c.OnTerminal != nil {
			c.OnTerminal(ctx, key, err)
		}
	default:
		level := slog.LevelWarn
		if errors.Is(err, store.ErrConflict) && c.queue.NumRequeues(key) < 3 {
			// A write raced another (a cache a moment behind the store):
			// the retry reads afresh, as Kubernetes' controllers do quietly.
			level = slog.LevelDebug
		}
		c.log.Log(ctx, level, "reconcile failed, retrying", "key", key, "err", err, "retries", c.queue.NumRequeues(key))
		c.m.errored.Inc()
		c.m.errors.Inc()
		c.queue.AddRateLimited(key)
	}
	return true
}

func (c *Controller) reconcile(ctx context.Context, key string) (res Result, err error) {
	c.m.active.Inc()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			c.m.panics.Inc()
			err = fmt.Errorf("panic reconciling %s: %v", key, r)
		}
		c.m.time.Observe(time.Since(start).Seconds())
		c.m.active.Dec()
	}()
	return c.rec.Reconcile(ctx, key)
}

// Handler returns informer event handlers that enqueue, through keys, the
// objects an event concerns: keys receives the new object on add and update,
// the old one too on update, and the last known state on delete.
func (c *Controller) Handler(keys func(obj any) []string) cache.ResourceEventHandler {
	add := func(obj any) {
		for _, k := range keys(obj) {
			c.queue.Add(k)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: add,
		UpdateFunc: func(old, cur any) {
			add(old)
			add(cur)
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			add(obj)
		},
	}
}

// SelfKeys enqueues the object's own key.
func SelfKeys(obj any) []string {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return nil
	}
	return []string{key}
}
