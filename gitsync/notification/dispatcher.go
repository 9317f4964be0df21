package notification

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds each request of the default client.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxAttempts is the default of Options.MaxAttempts.
	DefaultMaxAttempts = 5
	// DefaultBackoff is the default of Options.Backoff.
	DefaultBackoff = time.Second
	// DefaultMaxBackoff is the default of Options.MaxBackoff.
	DefaultMaxBackoff = time.Minute
	// DefaultQueueSize is the default of Options.QueueSize.
	DefaultQueueSize = 256
)

// Options tune a Dispatcher; zero values take the defaults.
type Options struct {
	// Client sends the requests; default: one with a DefaultTimeout
	// timeout.
	Client *http.Client
	// Log receives a line per dropped event and, at debug level, per
	// delivery and retry; default: discard.
	Log *slog.Logger
	// MaxAttempts bounds the attempts per event and provider; default
	// DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled for each next
	// one; default DefaultBackoff.
	Backoff time.Duration
	// MaxBackoff caps the delay between attempts; default
	// DefaultMaxBackoff.
	MaxBackoff time.Duration
	// QueueSize bounds the events waiting per provider; default
	// DefaultQueueSize. When it is full the oldest waiting event is dropped
	// with a log line.
	QueueSize int
}

// withDefaults fills the zero (or negative) fields of o.
func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	return o
}

// sender delivers events to one kind of endpoint.
type sender interface {
	// takes reports whether the kind of endpoint wants e at all.
	takes(e Event) bool
	// send makes one attempt to deliver e. Errors wrap ErrDelivery.
	send(ctx context.Context, e Event) error
}

// Dispatcher queues events and delivers them to providers. Its methods are
// safe for concurrent use.
type Dispatcher struct {
	opts    Options
	workers []*worker
}

// worker delivers the events of one provider, in order.
type worker struct {
	p    Provider
	s    sender
	q    *queue
	log  *slog.Logger
	opts Options
}

// New checks every provider (Validate, unique names) and returns a
// Dispatcher for them; with no providers it does nothing. Errors wrap
// ErrConfig.
func New(providers []Provider, opts Options) (*Dispatcher, error) {
	opts = opts.withDefaults()
	d := &Dispatcher{opts: opts}
	seen := map[string]bool{}
	for i, p := range providers {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("%w: providers[%d]: name: %q is used by an earlier provider", ErrConfig, i, p.Name)
		}
		seen[p.Name] = true
		p.Sources = slices.Clone(p.Sources)
		d.workers = append(d.workers, &worker{
			p:    p,
			s:    newSender(p, opts.Client),
			q:    newQueue(opts.QueueSize),
			log:  opts.Log.With("component", "notification", "provider", p.Name),
			opts: opts,
		})
	}
	return d, nil
}

// newSender returns the sender of a valid provider's type.
func newSender(p Provider, client *http.Client) sender {
	switch p.Type {
	case Slack:
		return &slack{p: p, client: client}
	case GitHub:
		return &github{commitStatus{p: p, client: client}}
	case GitLab:
		return &gitlab{commitStatus{p: p, client: client}}
	default:
		return &webhook{p: p, client: client}
	}
}

// Notify queues e for every provider whose filters take it. It never
// blocks: a full queue drops its oldest event. A nil *Dispatcher does
// nothing.
func (d *Dispatcher) Notify(e Event) {
	if d == nil {
		return
	}
	e = e.complete(time.Now())
	for _, w := range d.workers {
		if !w.takes(e) {
			continue
		}
		if old, dropped := w.q.push(e); dropped {
			w.log.Warn("notification queue full: the oldest waiting event is dropped",
				"source", old.Source, "revision", shortRevision(old.Revision), "state", old.State)
		}
	}
}

// takes applies the provider's filters and its type's own.
func (w *worker) takes(e Event) bool {
	if len(w.p.Sources) > 0 && !slices.Contains(w.p.Sources, e.Source) {
		return false
	}
	if w.p.Severity != "" && e.Severity.rank() < w.p.Severity.rank() {
		return false
	}
	return w.s.takes(e)
}

// Run delivers queued events until ctx is done, one goroutine per
// provider, each provider's events in order. A failed delivery is retried
// with back-off when it may go another way later: network errors, 408,
// 429 and 5xx are retried; other 4xx, which say the request is wrong, are
// not. An event that cannot be delivered is dropped with a log line. Run
// returns ctx's error once every goroutine has ended; events still queued
// are lost. Run may be called again after it returned (a server runs it
// in each of its terms as leader), never twice at once.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { w.run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return ctx.Err()
}

// run delivers w's events until ctx is done.
func (w *worker) run(ctx context.Context) {
	for {
		e, ok := w.q.pop(ctx)
		if !ok {
			return
		}
		w.deliver(ctx, e)
	}
}

// deliver makes up to MaxAttempts attempts at e, and logs the outcome.
func (w *worker) deliver(ctx context.Context, e Event) {
	log := w.log.With("source", e.Source, "revision", shortRevision(e.Revision), "state", e.State)
	delay := w.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := w.s.send(ctx, e)
		if err == nil {
			log.Debug("notification delivered", "attempt", attempt)
			return
		}
		if ctx.Err() != nil {
			log.Debug("notification abandoned: shutting down", "err", err)
			return
		}
		if !retryable(err) || attempt >= w.opts.MaxAttempts {
			log.Error("notification dropped", "attempts", attempt, "err", err)
			return
		}
		wait := min(max(delay, retryAfter(err)), w.opts.MaxBackoff)
		log.Debug("notification not delivered, retrying", "attempt", attempt, "retryIn", wait, "err", err)
		if !sleep(ctx, wait) {
			return
		}
		delay = min(delay*2, w.opts.MaxBackoff)
	}
}

// retryAfter is the delay an endpoint asked for, or zero.
func retryAfter(err error) time.Duration {
	var se *statusError
	if errors.As(err, &se) {
		return se.retryAfter
	}
	return 0
}

// sleep waits d, and reports false when ctx ended the wait.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
