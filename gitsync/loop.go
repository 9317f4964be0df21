package gitsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store/record"
)

// Reasons of a sync attempt, as the Sync status conditions carry them.
const (
	ReasonSucceeded          = keelsonv1alpha1.ReasonSucceeded
	ReasonValidationFailed   = keelsonv1alpha1.ReasonValidationFailed
	ReasonFetchFailed        = keelsonv1alpha1.ReasonFetchFailed
	ReasonApplyFailed        = keelsonv1alpha1.ReasonApplyFailed
	ReasonVerificationFailed = keelsonv1alpha1.ReasonVerificationFailed
	ReasonDecryptionFailed   = keelsonv1alpha1.ReasonDecryptionFailed
	ReasonHookFailed         = keelsonv1alpha1.ReasonHookFailed
	ReasonHealthCheckFailed  = keelsonv1alpha1.ReasonHealthCheckFailed
	ReasonDependencyNotReady = keelsonv1alpha1.ReasonDependencyNotReady
)

// DefaultInterval is how often a Loop polls its source.
const DefaultInterval = 30 * time.Second

// Status is what a Loop reports after each attempt.
type Status struct {
	// Name is the sync's name; Source describes where it reads.
	Name, Source string
	// LastAttempted is the last revision a sync was tried for; LastApplied
	// the last one that is in the store. They differ while a revision fails.
	LastAttempted, LastApplied Revision
	// LastAttemptTime and LastAppliedTime are when those ended.
	LastAttemptTime, LastAppliedTime time.Time
	// Duration is how long the last attempt took.
	Duration time.Duration
	// Reason is one of the Reason constants; Message says why, for people.
	Reason, Message string
	// Errors are the problems of the last attempt, "file:line: message" each.
	Errors []string
	// Counts of the last attempt.
	Created, Updated, Deleted, Unchanged int
	// NotActedOn names the objects of the revision the last attempt applied
	// whose kind keelson stores but does not act on yet ("Ingress
	// shop/web"), sorted; Message says so too. Empty when the attempt failed.
	NotActedOn []string
	// Autoscaled names the objects of the applied revision whose replicas
	// follow a HorizontalPodAutoscaler of it, not Git (Result.Autoscaled);
	// Message says so too.
	Autoscaled []string
	// Attempts counts syncs tried since start; a poll that finds the applied
	// revision again is not an attempt.
	Attempts int
	// LastHealthy is the last revision applied and seen Healthy as a whole
	// (a sync with Wait); rollback goes back to it.
	LastHealthy Revision
	// Failed is the revision that failed its hooks or health checks (and
	// was rolled back, with Rollback); it is not tried again until the
	// source moves.
	Failed Revision
}

// Loop keeps one source synced: it polls at Interval, syncs when the
// revision differs from the last applied one, and reports a Status.
type Loop struct {
	// Source is polled. Required.
	Source Source
	// Syncer applies revisions. Required.
	Syncer *Syncer
	// Interval between polls; DefaultInterval when zero.
	Interval time.Duration
	// Resync, when positive, re-applies an unchanged revision once the last
	// apply is that old, which puts back objects changed behind Git's back.
	Resync time.Duration
	// OnStatus, when set, is called after every attempt with the new status
	// (from the loop's goroutine: keep it short).
	OnStatus func(Status)
	// Log gets one line per failed attempt; New tags it with the component
	// and the sync's name. Optional.
	Log *slog.Logger
	// Suspend makes SyncOnce do nothing: the source is not read and the store
	// keeps the last applied revision. Set it before Run.
	Suspend bool
	// DependsOn names the syncs whose Sync objects must say Ready and
	// Healthy before a new revision is applied (ErrDependency).
	DependsOn []string
	// Rollback re-applies Status.LastHealthy when a revision fails a hook
	// or a health check after writing (rollback.go).
	Rollback bool
	// OnStart, when set, is called when an attempt at a new revision
	// begins, not a resync of the applied one (from the loop's goroutine:
	// keep it short).
	OnStart func(name string, rev Revision)

	// Spec describes the source in the Sync object the loop writes its
	// status to; New fills it from the Config.
	Spec keelsonv1alpha1.SyncSpec

	events    *record.Recorder // set by Run; nil records nothing
	noPending bool             // no staged revision can be pending (see staged.go)
	waitingOn string           // what the last ErrDependency said, recorded once
	rolled    *rollback        // the rollback of the attempt being recorded
	trigger   chan struct{}
	once      sync.Once
	syncing   sync.Mutex // one SyncOnce at a time: a Syncer applies serially
	mu        sync.Mutex // guards status
	status    Status
}

func (l *Loop) init() {
	l.once.Do(func() { l.trigger = make(chan struct{}, 1) })
}

// Trigger asks the running loop to poll now, without waiting for the
// interval; calls while one is pending collapse into it.
func (l *Loop) Trigger() {
	l.init()
	select {
	case l.trigger <- struct{}{}:
	default:
	}
}

// Status returns the status after the last attempt.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	s.Errors = append([]string(nil), s.Errors...)
	return s
}

// Run polls until ctx is done: once at start, then at every Interval or
// Trigger, and at once when a Source that is a Notifier says it changed. After a failed attempt it retries sooner, from 1 s doubling up to
// Interval. It returns ctx.Err().
func (l *Loop) Run(ctx context.Context) error {
	l.init()
	interval := l.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	l.events = record.New(l.Syncer.Store, "gitsync", l.logger())
	go l.events.Run(ctx)
	if err := l.resume(ctx); err != nil && ctx.Err() == nil {
		l.logger().Warn("cannot read the Sync object: the revision it applied last is applied again", "err", err)
	}
	if err := l.publishSpec(ctx); err != nil && ctx.Err() == nil {
		l.logger().Warn("cannot write the Sync object", "err", err)
	}
	if n, ok := l.Source.(Notifier); ok {
		if err := n.Notify(ctx, l.Trigger); err != nil && l.Log != nil {
			l.Log.Warn("no change notifications, polling only", "err", err)
		}
	}
	backoff := time.Second
	for {
		wait := interval
		if err := l.SyncOnce(ctx); errors.Is(err, ErrDependency) {
			wait = min(dependencyRetry, interval)
		} else if err != nil && ctx.Err() == nil {
			if l.Log != nil {
				l.Log.Error("sync failed", "revision", l.Status().LastAttempted.Short(), "err", err)
			}
			wait, backoff = min(backoff, interval), min(2*backoff, interval)
		} else {
			backoff = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-l.trigger:
			t.Stop()
		case <-t.C:
		}
	}
}

// SyncOnce polls the source once and syncs when its revision is new. A
// revision that failed validation is not tried again until the source moves:
// the same files fail the same way. Calls made while Run runs wait for its
// sync to end. Errors: those of Source and Syncer.Apply.
func (l *Loop) SyncOnce(ctx context.Context) error {
	if l.Suspend {
		return nil
	}
	l.syncing.Lock()
	defer l.syncing.Unlock()
	start := time.Now()
	rev, err := l.Source.Resolve(ctx)
	if err != nil {
		l.record(ctx, start, Revision{}, nil, err)
		return err
	}
	if l.skip(rev, start) {
		return nil
	}
	if len(l.DependsOn) > 0 {
		if err := l.waitDependencies(ctx, start, rev); err != nil {
			return err
		}
	}
	l.mu.Lock()
	resync := rev.ID == l.status.LastApplied.ID
	l.mu.Unlock()
	if l.OnStart != nil && !resync {
		l.OnStart(l.Syncer.Name, rev)
	}
	if !l.noPending {
		if err := l.finishPending(ctx, rev); err != nil {
			return err
		}
		start = time.Now()
	}
	fsys, err := l.Source.Files(ctx, rev)
	if err != nil {
		l.record(ctx, start, rev, nil, err)
		return err
	}
	l.Syncer.resync = resync
	res, err := l.Syncer.Apply(ctx, rev, fsys)
	l.Syncer.resync = false
	if err != nil && l.Rollback && (errors.Is(err, ErrHook) || errors.Is(err, ErrHealth)) && res != nil && res.Transactions > 0 {
		l.rolled = l.rollback(ctx, rev)
	}
	l.record(ctx, start, rev, res, err)
	// Only an apply stopped half way can leave a staged revision pending
	// (besides a crash, which the first sync of a process checks for).
	l.noPending = l.Syncer.pending == ""
	return err
}

func (l *Loop) skip(rev Revision, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.status
	if rev.ID == st.LastApplied.ID {
		return l.Resync <= 0 || now.Sub(st.LastAppliedTime) < l.Resync
	}
	if rev.ID == st.Failed.ID {
		// A revision that failed a hook or a health check is not run
		// again in a loop (a migration would repeat): a new commit is
		// the way forward.
		return true
	}
	// The same files fail the same way.
	return rev.ID == st.LastAttempted.ID && (st.Reason == ReasonValidationFailed || st.Reason == ReasonVerificationFailed)
}

// record folds one attempt into the status, then publishes it: the Sync
// object, an Event, the metrics and OnStatus.
func (l *Loop) record(ctx context.Context, start time.Time, rev Revision, res *Result, err error) {
	l.mu.Lock()
	st := &l.status
	st.Name, st.Source = l.Syncer.Name, l.Source.String()
	st.Attempts++
	st.LastAttempted, st.LastAttemptTime = rev, time.Now()
	st.Duration = st.LastAttemptTime.Sub(start)
	st.Errors, st.Message = nil, ""
	st.Created, st.Updated, st.Deleted, st.Unchanged = 0, 0, 0, 0
	st.NotActedOn, st.Autoscaled = nil, nil
	if res != nil {
		st.Created, st.Updated, st.Deleted, st.Unchanged = res.Created, res.Updated, res.Deleted, res.Unchanged
		for _, e := range res.Errors {
			st.Errors = append(st.Errors, e.Error())
		}
	}
	switch {
	case err == nil:
		st.Reason = ReasonSucceeded
		st.LastApplied, st.LastAppliedTime = rev, st.LastAttemptTime
		st.Message = "applied revision " + rev.Short()
		// An applied revision that keelson only partly acts on says so
		// where people look first: the Ready message.
		var clauses []string
		if st.NotActedOn = notActedOn(res); len(st.NotActedOn) > 0 {
			clauses = append(clauses, notActedOnClause(st.NotActedOn))
		}
		if res != nil {
			if st.Autoscaled = res.Autoscaled; len(st.Autoscaled) > 0 {
				clauses = append(clauses, autoscaledClause(st.Autoscaled))
			}
		}
		if len(clauses) > 0 {
			st.Message += ": " + strings.Join(clauses, "; ")
		}
	case errors.Is(err, ErrInvalid):
		st.Reason = ReasonValidationFailed
	case errors.Is(err, ErrHook):
		st.Reason = ReasonHookFailed
	case errors.Is(err, ErrHealth):
		st.Reason = ReasonHealthCheckFailed
	case errors.Is(err, ErrDependency):
		st.Reason = ReasonDependencyNotReady
	case errors.Is(err, ErrVerify):
		st.Reason = ReasonVerificationFailed
	case errors.Is(err, ErrDecrypt):
		st.Reason = ReasonDecryptionFailed
	case errors.Is(err, ErrFetch):
		st.Reason = ReasonFetchFailed
	default:
		st.Reason = ReasonApplyFailed
	}
	if err != nil {
		st.Message = firstLine(err.Error())
		if n := len(st.Errors); n > 0 && (st.Reason == ReasonValidationFailed || st.Reason == ReasonDecryptionFailed) {
			st.Message = fmt.Sprintf("revision %s not applied: %s", rev.Short(), firstLine(st.Errors[0]))
			if n > 1 {
				st.Message += fmt.Sprintf(" (and %d more problems)", n-1)
			}
		}
		if len(st.Errors) == 0 {
			var list schema.ErrorList
			if !errors.As(err, &list) {
				st.Errors = []string{err.Error()}
			}
		}
		var hf *hookFailure
		if errors.As(err, &hf) {
			st.Errors = append(st.Errors, hf.logs...)
		}
		if errors.Is(err, ErrHook) || errors.Is(err, ErrHealth) {
			st.Failed = rev
		}
		l.rolled.fold(st)
	}
	l.rolled = nil
	if res != nil {
		for _, e := range res.HookErrors {
			st.Errors = append(st.Errors, "on-failure "+e)
		}
	}
	if err == nil {
		st.Failed = Revision{} // a revision applied since: the failed one may be tried again
		if l.Syncer.Wait {
			st.LastHealthy = rev
		}
	}
	out := *st
	out.Errors = append([]string(nil), st.Errors...)
	l.mu.Unlock()
	observe(l.Syncer.Name, out, res)
	if perr := l.publish(ctx, out, res); perr != nil && ctx.Err() == nil {
		l.logger().Warn("cannot write the sync's status", "err", perr)
	}
	if l.OnStatus != nil {
		l.OnStatus(out)
	}
}

func (l *Loop) logger() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

func firstLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
