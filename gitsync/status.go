package gitsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// The Sync object: after every attempt the loop writes its Status into the
// Sync named after the sync (syncs.keelson.dev, cluster-scoped), so that
// `kubectl get syncs.keelson.dev` and `keelson status` show it. gitsync owns
// the spec and every status field but Health and the Healthy condition,
// which the reconciler writes; each writer changes only its fields, with
// compare-and-swap, and retries on conflict.

// maxStatusErrors bounds the errors a Sync shows; the log has them all.
const maxStatusErrors = 100

// statusWriteAttempts bounds the retries of a Sync write that loses races.
const statusWriteAttempts = 5

// publishSpec makes the Sync object exist with the loop's spec, before the
// first attempt: a suspended sync, which never attempts, shows too.
func (l *Loop) publishSpec(ctx context.Context) error {
	return l.writeSync(ctx, func(s *keelsonv1alpha1.Sync) { s.Spec = l.syncSpec() })
}

// resume takes up where the Sync object says the sync stands, when the loop
// starts with no attempt of its own: after a restart, or in a new leader
// that takes over from another server. A revision the object says was
// applied is not applied again (until Resync is due), and one that failed
// validation is not tried again: a takeover neither repeats nor loses an
// attempt. Nothing is taken up when the sync's spec changed since (another
// URL, ref or path may give the same revision other files).
func (l *Loop) resume(ctx context.Context) error {
	l.mu.Lock()
	fresh := l.status.LastAttempted.ID == "" && l.status.LastApplied.ID == ""
	l.mu.Unlock()
	if !fresh {
		return nil
	}
	cur := &keelsonv1alpha1.Sync{}
	err := l.Syncer.Store.Get(ctx, "", l.Syncer.Name, cur)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !equality.Semantic.DeepEqual(cur.Spec, l.syncSpec()) {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, s := &l.status, cur.Status
	if s.LastApplied != nil && s.LastAppliedTime != nil {
		st.LastApplied, st.LastAppliedTime = revisionOfCommit(s.LastApplied), s.LastAppliedTime.Time
	}
	if s.LastHealthyRevision != "" {
		st.LastHealthy = Revision{ID: s.LastHealthyRevision, FromGit: s.LastApplied != nil && s.LastApplied.FromGit}
	}
	if s.FailedRevision != "" {
		st.Failed = Revision{ID: s.FailedRevision}
	}
	if ready := meta.FindStatusCondition(s.Conditions, keelsonv1alpha1.ConditionReady); ready != nil && s.LastAttempted != nil {
		st.LastAttempted, st.Reason, st.Message = revisionOfCommit(s.LastAttempted), ready.Reason, ready.Message
		st.Errors = append([]string(nil), s.Errors...)
		if h := s.History; len(h) > 0 {
			st.LastAttemptTime = h[0].StartTime.Add(h[0].Duration.Duration)
			st.Duration = h[0].Duration.Duration
		}
	}
	return nil
}

// revisionOfCommit is commitOf's inverse.
func revisionOfCommit(c *keelsonv1alpha1.Commit) Revision {
	r := Revision{ID: c.Revision, FromGit: c.FromGit, Message: c.Message, Author: c.Author}
	if c.Time != nil {
		r.Time = c.Time.Time
	}
	return r
}

// publish writes the outcome of one attempt to the Sync object and records
// an Event about it.
func (l *Loop) publish(ctx context.Context, st Status, res *Result) error {
	var obj *keelsonv1alpha1.Sync
	err := l.writeSync(ctx, func(s *keelsonv1alpha1.Sync) {
		s.Spec = l.syncSpec()
		applyStatus(&s.Status, s.Generation, st, res)
		obj = s
	})
	if err != nil {
		return err
	}
	evType, msg := corev1.EventTypeNormal, st.Message
	if st.Reason != ReasonSucceeded {
		evType = corev1.EventTypeWarning
	} else if res != nil {
		msg = fmt.Sprintf("applied revision %s: %d created, %d updated, %d deleted, %d unchanged",
			st.LastAttempted.Short(), res.Created, res.Updated, res.Deleted, res.Unchanged)
		if res.DriftCorrected > 0 {
			msg += fmt.Sprintf(", %d put back after changes behind Git's back", res.DriftCorrected)
		}
		if c := notActedOnClause(st.NotActedOn); c != "" {
			msg += "; " + c
		}
		if c := autoscaledClause(st.Autoscaled); c != "" {
			msg += "; " + c
		}
	}
	l.events.Eventf(obj, evType, st.Reason, "%s", msg)
	return nil
}

// syncSpec is the spec the loop runs with; a Loop built without New shows
// its source's description as the URL.
func (l *Loop) syncSpec() keelsonv1alpha1.SyncSpec {
	spec := l.Spec
	if spec.URL == "" {
		spec.URL = l.Source.String()
	}
	spec.Suspend = l.Suspend
	if spec.Interval.Duration == 0 {
		spec.Interval.Duration = cmp.Or(l.Interval, DefaultInterval)
	}
	return spec
}

// writeSync changes the loop's Sync object (see updateSync).
func (l *Loop) writeSync(ctx context.Context, change func(*keelsonv1alpha1.Sync)) error {
	return updateSync(ctx, l.Syncer.Store, l.Syncer.Name, change)
}

// applyStatus folds one attempt into a Sync's status.
func applyStatus(s *keelsonv1alpha1.SyncStatus, generation int64, st Status, res *Result) {
	s.ObservedGeneration = generation
	s.LastAttemptedRevision = st.LastAttempted.ID
	s.LastAttempted = commitOf(st.LastAttempted)
	if st.LastApplied.ID != "" {
		s.LastAppliedRevision = st.LastApplied.ID
		s.LastApplied = commitOf(st.LastApplied)
		t := metav1.NewTime(st.LastAppliedTime)
		s.LastAppliedTime = &t
	}
	if st.LastHealthy.ID != "" {
		s.LastHealthyRevision = st.LastHealthy.ID
	}
	s.FailedRevision = st.Failed.ID
	s.Errors = st.Errors
	if len(s.Errors) > maxStatusErrors {
		s.Errors = append(s.Errors[:maxStatusErrors:maxStatusErrors], fmt.Sprintf("… and %d more problems", len(st.Errors)-maxStatusErrors))
	}
	cond := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{
			Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation,
		})
	}
	switch st.Reason {
	case ReasonSucceeded:
		// What keelson does not act on is said once, by Ready.
		plain := "applied revision " + st.LastApplied.Short()
		cond(keelsonv1alpha1.ConditionReady, metav1.ConditionTrue, st.Reason, st.Message)
		cond(keelsonv1alpha1.ConditionReconciling, metav1.ConditionFalse, st.Reason, plain)
		cond(keelsonv1alpha1.ConditionStalled, metav1.ConditionFalse, st.Reason, plain)
	case ReasonValidationFailed, ReasonVerificationFailed, ReasonHookFailed, ReasonHealthCheckFailed:
		// Only a new commit can fix these: stalled, not retried (a hook
		// run again in a loop would repeat a migration).
		cond(keelsonv1alpha1.ConditionReady, metav1.ConditionFalse, st.Reason, st.Message)
		cond(keelsonv1alpha1.ConditionReconciling, metav1.ConditionFalse, st.Reason, st.Message)
		cond(keelsonv1alpha1.ConditionStalled, metav1.ConditionTrue, st.Reason, st.Message)
	default:
		// Fetch and apply failures are retried with back-off.
		cond(keelsonv1alpha1.ConditionReady, metav1.ConditionFalse, st.Reason, st.Message)
		cond(keelsonv1alpha1.ConditionReconciling, metav1.ConditionTrue, st.Reason, "retrying with back-off: "+st.Message)
		cond(keelsonv1alpha1.ConditionStalled, metav1.ConditionFalse, st.Reason, st.Message)
	}
	attempt := keelsonv1alpha1.SyncAttempt{
		Revision: st.LastAttempted.ID, Result: st.Reason,
		StartTime: metav1.NewTime(st.LastAttemptTime.Add(-st.Duration)),
		Duration:  metav1.Duration{Duration: st.Duration},
		Created:   st.Created, Updated: st.Updated, Deleted: st.Deleted, Unchanged: st.Unchanged,
	}
	if st.Reason != ReasonSucceeded {
		attempt.Message = st.Message
	}
	if res != nil {
		attempt.DriftCorrected = res.DriftCorrected
	}
	s.History = append([]keelsonv1alpha1.SyncAttempt{attempt}, s.History...)
	if len(s.History) > keelsonv1alpha1.MaxHistory {
		s.History = s.History[:keelsonv1alpha1.MaxHistory]
	}
	if st.Reason == ReasonSucceeded && res != nil {
		// The set of objects changes only with creations and deletions;
		// listing and sorting 10,000 of them at every commit costs more
		// than the commit's own sync.
		if res.Created > 0 || res.Deleted > 0 || len(s.Inventory) != res.Created+res.Updated+res.Unchanged {
			s.Inventory = inventoryOf(res)
		}
		s.DriftCorrections += int64(res.DriftCorrected)
	}
}

func commitOf(r Revision) *keelsonv1alpha1.Commit {
	if r.ID == "" {
		return nil
	}
	c := &keelsonv1alpha1.Commit{Revision: r.ID, FromGit: r.FromGit, Message: firstLine(r.Message), Author: r.Author}
	if !r.Time.IsZero() {
		t := metav1.NewTime(r.Time.Truncate(time.Second))
		c.Time = &t
	}
	return c
}

// inventoryOf lists the objects the applied revision holds, sorted.
func inventoryOf(res *Result) []keelsonv1alpha1.ObjectRef {
	out := make([]keelsonv1alpha1.ObjectRef, 0, len(res.Changes))
	for _, c := range res.Changes {
		o := c.obj
		if o == nil {
			o = c.cur
		}
		if c.Action == Delete || o == nil {
			continue
		}
		out = append(out, keelsonv1alpha1.ObjectRef{
			APIVersion: c.res.GVK.GroupVersion().String(), Kind: c.res.GVK.Kind,
			Namespace: o.GetNamespace(), Name: o.GetName(),
		})
	}
	slices.SortFunc(out, func(a, b keelsonv1alpha1.ObjectRef) int {
		return cmp.Or(cmp.Compare(a.APIVersion, b.APIVersion), cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}
