package gitsync

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// rollback is what going back to the last Healthy revision did, folded into
// the status of the attempt that failed.
type rollback struct {
	to  Revision
	res *Result
	err error
}

// rollback re-applies the last revision seen applied and Healthy after
// failed failed a hook or a health check, without its hooks: they ran when
// it was applied first. nil when there is nothing to go back to.
func (l *Loop) rollback(ctx context.Context, failed Revision) *rollback {
	l.mu.Lock()
	to := l.status.LastHealthy
	l.mu.Unlock()
	rb := &rollback{to: to}
	switch {
	case to.ID == "":
		rb.err = errors.New("no revision was seen Healthy yet")
		return rb
	case to.ID == failed.ID:
		return nil
	case !to.FromGit:
		rb.err = errors.New("a directory keeps no earlier revision")
		return rb
	}
	l.logger().Warn("revision failed; rolling back to the last Healthy one", "failed", failed.Short(), "to", to.Short())
	fsys, err := l.Source.Files(ctx, to)
	if err != nil {
		rb.err = err
		return rb
	}
	l.Syncer.noHooks = true
	defer func() { l.Syncer.noHooks = false }()
	rb.res, rb.err = l.Syncer.Apply(ctx, to, fsys)
	return rb
}

// fold writes the rollback into the status of the failed attempt: the
// store holds the revision rolled back to, and the failed one is marked.
func (rb *rollback) fold(st *Status) {
	if rb == nil {
		return
	}
	if rb.err != nil {
		st.Message += fmt.Sprintf("; rollback to %s failed: %s", shortOr(rb.to), firstLine(rb.err.Error()))
		return
	}
	st.LastApplied, st.LastAppliedTime = rb.to, time.Now()
	st.Message += "; rolled back to " + rb.to.Short()
}

func shortOr(r Revision) string {
	if r.ID == "" {
		return "the last Healthy revision"
	}
	return r.Short()
}

// waitDependencies returns ErrDependency while a source this one depends on
// is not Ready and Healthy, recording the wait in the status when what it
// waits for changes (which source, and why), not at every retry nor as a
// rollout's message moves on, which would flood the history and Events.
func (l *Loop) waitDependencies(ctx context.Context, start time.Time, rev Revision) error {
	msg, what, err := dependenciesReady(ctx, l.Syncer.Store, l.DependsOn)
	if err != nil {
		return err
	}
	if msg == "" {
		l.waitingOn = ""
		return nil
	}
	err = fmt.Errorf("%w: revision %s waits: %s", ErrDependency, rev.Short(), msg)
	if what != l.waitingOn {
		l.waitingOn = what
		l.record(ctx, start, rev, nil, err)
	}
	return err
}
