package gitsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// A revision too big for one transaction is applied in stages, with this
// protocol, so that a crash at any point converges without manual action:
//
//  1. The whole revision is validated before anything is written (as for
//     any revision).
//  2. The Sync object records status.pendingRevision = the revision.
//  3. The writes land in kind-ordered transactions, each compare-and-swap on
//     what the diff read.
//  4. pendingRevision is cleared.
//
// After a crash between 2 and 4, the next sync reads pendingRevision, and
// when it names another revision than the source's current one, applies it
// first: it was valid, so it is applied to its end (the diff from the store
// finds what is left to do) before the source's newer revision is
// considered, which may be invalid and so never land. When the pending
// revision cannot be read any more (history rewritten and collected, or a
// plain directory, whose old contents are gone) the current revision is
// applied instead, if it is valid.

// updateSync reads the Sync object of name, lets change modify it, and writes
// it back (creating it when absent) when anything changed. A write that loses
// a race starts over from the stored object, so that the fields other writers
// own (the reconciler's health) survive.
func updateSync(ctx context.Context, st *store.Store, name string, change func(*keelsonv1alpha1.Sync)) error {
	var err error
	for range statusWriteAttempts {
		cur := &keelsonv1alpha1.Sync{}
		err = st.Get(ctx, "", name, cur)
		switch {
		case errors.Is(err, store.ErrNotFound):
			cur = &keelsonv1alpha1.Sync{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}}
			change(cur)
			err = st.Create(ctx, cur)
		case err != nil:
			return fmt.Errorf("sync object %s: %w", name, err)
		default:
			before := cur.DeepCopy()
			change(cur)
			if equality.Semantic.DeepEqual(before, cur) {
				return nil
			}
			err = st.Update(ctx, cur)
		}
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sync object %s: %w", name, err)
	}
	return nil
}

// setPending records (or, with "", clears) the revision being applied in
// stages.
func (s *Syncer) setPending(ctx context.Context, rev string) error {
	keep := rev != "" && rev == s.pending // a revision taken up again keeps the hooks it ran
	err := updateSync(ctx, s.Store, s.Name, func(o *keelsonv1alpha1.Sync) {
		o.Status.PendingRevision = rev
		if !keep {
			o.Status.PendingHooks = nil
		}
	})
	if err != nil {
		return err
	}
	s.pending = rev
	return nil
}

// hookRan records that a hook of the pending revision succeeded, so that a
// sync finishing the revision after a crash does not run it again.
func (s *Syncer) hookRan(ctx context.Context, rev string, h key) error {
	s.ran.add(rev, h)
	if s.pending != rev {
		return nil
	}
	return updateSync(ctx, s.Store, s.Name, func(o *keelsonv1alpha1.Sync) {
		if !slices.Contains(o.Status.PendingHooks, h.String()) {
			o.Status.PendingHooks = append(o.Status.PendingHooks, h.String())
		}
	})
}

// ranHooks are the hooks that succeeded for one revision, in this process
// or (for a pending revision) before a crash: a retry after a lost race, or
// the sync that finishes the revision, does not run them again.
type ranHooks struct {
	rev  string
	done map[string]bool
}

func (r *ranHooks) add(rev string, h key) {
	if r.rev != rev {
		r.rev, r.done = rev, map[string]bool{}
	}
	r.done[h.String()] = true
}

func (r *ranHooks) has(rev string, h key) bool { return r.rev == rev && r.done[h.String()] }

// PendingRevision returns the revision whose staged apply began and did not
// finish, or "". Errors: those of the store, except ErrNotFound.
func (s *Syncer) PendingRevision(ctx context.Context) (string, error) {
	o := &keelsonv1alpha1.Sync{}
	switch err := s.Store.Get(ctx, "", s.Name, o); {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	}
	s.pending = o.Status.PendingRevision
	if s.pending != "" && s.ran.rev != s.pending {
		s.ran = ranHooks{rev: s.pending, done: map[string]bool{}}
		for _, h := range o.Status.PendingHooks {
			s.ran.done[h] = true
		}
	}
	return s.pending, nil
}

// finishPending applies the revision a crash interrupted, when it is not the
// one about to be synced, and records that attempt. It returns an error only
// when the pending revision could be read and failed to apply: then the
// newer one must wait.
func (l *Loop) finishPending(ctx context.Context, next Revision) error {
	pending, err := l.Syncer.PendingRevision(ctx)
	if err != nil {
		return fmt.Errorf("%w: read the pending revision: %v", ErrApply, err)
	}
	if pending == "" || pending == next.ID {
		return nil
	}
	rev := Revision{ID: pending, FromGit: next.FromGit}
	if !next.FromGit {
		l.logger().Warn("a staged apply was interrupted; a directory's old contents are gone, so the current ones are applied", "pending", rev.Short())
		return nil
	}
	fsys, err := l.Source.Files(ctx, rev)
	if err != nil {
		l.logger().Warn("a staged apply was interrupted and its revision cannot be read any more; applying the current one", "pending", rev.Short(), "err", err)
		return nil
	}
	l.logger().Info("finishing a staged apply that was interrupted", "pending", rev.Short(), "next", next.Short())
	start := time.Now()
	res, err := l.Syncer.Apply(ctx, rev, fsys)
	l.record(ctx, start, rev, res, err)
	return err
}
