package gitsync

import (
	"context"
	"errors"
	"fmt"

	"github.com/keelson/keelson/store"
)

// sequence is the apply of one revision's writes: its waves in order, each
// one's pre-apply hooks first and each Healthy before a later wave is
// written, then the deletions, then (with Wait, or post-apply hooks) a
// health check of everything and the post-apply hooks.
//
// A revision that fits in one transaction and needs no gate lands at once,
// as ever. Otherwise it is staged (staged.go): the Sync records it pending
// before the first write and clears the mark after the last, so a crash
// converges to it. A hook or a health check that fails the revision is no
// crash: the mark is cleared, so that a newer commit (the fix) is applied
// next rather than this one again; the objects written until then stay.
type sequence struct {
	s       *Syncer
	res     *Result
	quotas  map[string][]store.Object
	stages  []*stage
	deletes []*Change
	post    []*desired
	// onFailure runs when a hook or a health check fails the revision.
	onFailure []*desired
	// healthy are the objects a gate found Healthy (by Change.Object).
	healthy map[string]bool

	staged     bool
	txns, done int // transactions planned, landed
}

// gated reports whether anything waits between writes: a later wave with
// writes or hooks, Wait, or post-apply hooks.
func (q *sequence) gated() bool {
	if q.s.Wait || len(q.post) > 0 {
		return true
	}
	for _, st := range q.stages[min(1, len(q.stages)):] {
		if len(st.writes) > 0 || len(st.pre) > 0 {
			return true
		}
	}
	return len(q.stages) > 0 && len(q.stages[0].pre) > 0
}

func (q *sequence) run(ctx context.Context) error {
	s, rev := q.s, q.res.Revision
	if !q.gated() {
		// Nothing waits between the writes: they go together, in as few
		// transactions as the limits allow, deletions last — one, all at
		// once, when they fit.
		var all []*Change
		for _, st := range q.stages {
			all = append(all, st.writes...)
		}
		q.stages, q.deletes = []*stage{{writes: append(all, q.deletes...)}}, nil
	}
	chunks := make([][][]*Change, len(q.stages))
	for i, st := range q.stages {
		chunks[i] = s.chunk(st.writes, q.quotas)
		q.txns += len(chunks[i])
	}
	delChunks := s.chunk(q.deletes, q.quotas)
	q.txns += len(delChunks)
	q.staged = q.txns > 1 || q.txns > 0 && q.gated()
	if q.staged {
		if err := s.setPending(ctx, rev.ID); err != nil {
			return fmt.Errorf("%w: revision %s: nothing applied: %w", ErrApply, rev.Short(), err)
		}
	}
	err := q.steps(ctx, chunks, delChunks)
	if err != nil && (errors.Is(err, ErrHook) || errors.Is(err, ErrHealth)) {
		if q.staged {
			if perr := s.setPending(ctx, ""); perr != nil {
				s.log().Warn("cannot clear the pending mark of a failed revision", "revision", rev.Short(), "err", perr)
			}
		}
		q.failed(ctx)
		return err
	}
	if err != nil {
		return err
	}
	if q.staged || s.pending != "" {
		// A revision applied to its end supersedes any pending one.
		if err := s.setPending(ctx, ""); err != nil {
			// Harmless: the next sync finds the revision applied already.
			return fmt.Errorf("%w: revision %s applied, but its pending mark stays: %w", ErrApply, rev.Short(), err)
		}
	}
	return nil
}

// steps writes the waves and the deletions, with the gates and hooks
// between them.
func (q *sequence) steps(ctx context.Context, chunks [][][]*Change, delChunks [][]*Change) error {
	s := q.s
	for i, st := range q.stages {
		if i > 0 && (len(st.writes) > 0 || len(st.pre) > 0) {
			if err := q.gate(ctx, q.stages[:i]); err != nil {
				return err
			}
		}
		if err := s.runHooks(ctx, st.pre); err != nil {
			return err
		}
		for _, ch := range chunks[i] {
			if err := q.land(ctx, ch); err != nil {
				return err
			}
		}
		if err := s.recreate(ctx, q.res, st.writes); err != nil {
			return err
		}
	}
	if len(delChunks) > 0 && q.gated() {
		// Prune once what replaces it is Healthy (a renamed Deployment).
		if err := q.gate(ctx, q.stages); err != nil {
			return err
		}
	}
	for _, ch := range delChunks {
		if err := q.land(ctx, ch); err != nil {
			return err
		}
	}
	if s.Wait && !(s.resync && q.txns == 0) || len(q.post) > 0 {
		// Every object, even those a wave's gate found Healthy before:
		// the revision is Healthy as a whole now. (A resync that writes
		// nothing waits for nothing: its health is the reconciler's to
		// report, not a failure of the sync.)
		q.healthy = map[string]bool{}
		if err := q.gate(ctx, q.stages); err != nil {
			return err
		}
	}
	return s.runHooks(ctx, q.post)
}

// land writes one transaction; a failure says how much of the revision is
// in.
func (q *sequence) land(ctx context.Context, ch []*Change) error {
	rev := q.res.Revision
	if err := q.s.writeChunk(ctx, q.res, ch); err != nil {
		if q.staged {
			return fmt.Errorf("%w: revision %s: transaction %d of %d (the earlier ones are applied; the next sync finishes the revision): %w",
				ErrApply, rev.Short(), q.done+1, q.txns, err)
		}
		return fmt.Errorf("%w: revision %s: nothing applied: %w", ErrApply, rev.Short(), err)
	}
	q.done++
	return nil
}

// gate waits until the objects of stages are Healthy, wave by wave.
func (q *sequence) gate(ctx context.Context, stages []*stage) error {
	for _, st := range stages {
		what := fmt.Sprintf("wave %d", st.wave)
		if len(q.stages) == 1 {
			what = "the revision's objects"
		}
		if err := q.s.waitHealthy(ctx, what, st.objects, q.healthy); err != nil {
			return err
		}
	}
	return nil
}

// failed runs the on-failure hooks; their own failure is logged and added
// to the result's hook errors, not to the revision's.
func (q *sequence) failed(ctx context.Context) {
	for _, h := range q.onFailure {
		if err := q.s.runHook(ctx, h); err != nil {
			q.s.log().Warn("on-failure hook failed", "hook", h.key.String(), "err", err)
			q.res.HookErrors = append(q.res.HookErrors, err.Error())
		}
	}
}
