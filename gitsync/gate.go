package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/store"
)

// ErrHealth marks a revision whose objects were not Healthy in time: a wave
// before the next one, or with Wait the whole revision. The objects written
// until then stay; nothing later is written.
var ErrHealth = errors.New("gitsync: health check failed")

// DefaultTimeout bounds a health check of a wave, of Wait, and a hook's run
// when a sync names no timeout.
const DefaultTimeout = 5 * time.Minute

// defaultPoll is how often a health check or a hook's run reads the store.
const defaultPoll = 500 * time.Millisecond

// maxUnhealthyShown bounds the objects an error about health names.
const maxUnhealthyShown = 5

func (s *Syncer) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Syncer) poll() time.Duration {
	if s.pollEvery > 0 {
		return s.pollEvery
	}
	return defaultPoll
}

// passes reports whether a health lets a gate open: Healthy, or Suspended
// (paused on purpose), or Unsupported (keelson does not act on the kind
// yet: waiting would hang, and the sync's status names such objects).
func passes(h health.Health) bool {
	return h.Status == health.Healthy || h.Status == health.Suspended || h.Status == health.Unsupported
}

// waitHealthy waits until every object of objs is Healthy (passes), reading
// them from the store, for at most the sync's timeout. A failure that will
// not mend (finallyFailed) fails at once. what names the objects for the error
// ("wave -1"). Objects found healthy are added to done and not read again.
func (s *Syncer) waitHealthy(ctx context.Context, what string, objs []*Change, done map[string]bool) error {
	deadline := time.Now().Add(s.timeout())
	for {
		var waiting []string
		for _, c := range objs {
			if done[c.Object] {
				continue
			}
			obj, err := s.get(ctx, c.res, c.namespace(), c.name())
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrApply, what, err)
			}
			var h health.Health
			if obj == nil {
				h = health.Of(nil)
			} else {
				h = health.OfKind(c.res.GVK.GroupKind(), obj)
			}
			if passes(h) {
				done[c.Object] = true
				continue
			}
			line := fmt.Sprintf("%s %s: %s", c.Object, h.Status, h.Message)
			if h.Status == health.Degraded && finallyFailed(obj) {
				return fmt.Errorf("%w: %s: %s (%s)", ErrHealth, what, line, c.Origin)
			}
			waiting = append(waiting, line)
		}
		if len(waiting) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			shown := waiting[:min(len(waiting), maxUnhealthyShown)]
			msg := strings.Join(shown, "; ")
			if n := len(waiting) - len(shown); n > 0 {
				msg += fmt.Sprintf("; and %d more", n)
			}
			return fmt.Errorf("%w: %s not Healthy after %s: %s", ErrHealth, what, s.timeout(), msg)
		}
		if err := sleep(ctx, s.poll()); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrApply, what, err) // stopped half way: the revision stays pending
		}
	}
}

// get reads one object from the store; nil when absent.
func (s *Syncer) get(ctx context.Context, r store.Resource, namespace, name string) (store.Object, error) {
	obj, err := r.New()
	if err != nil {
		return nil, err
	}
	switch err := s.Store.Get(ctx, namespace, name, obj); {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return obj, nil
}

// name is the name of the change's object.
func (c *Change) name() string {
	if c.obj != nil {
		return c.obj.GetName()
	}
	return c.cur.GetName()
}

// finallyFailed reports a failure that will not mend by waiting: a failed
// Job or Pod, a Deployment past its progress deadline.
func finallyFailed(obj store.Object) bool {
	switch o := obj.(type) {
	case *batchv1.Job:
		for _, c := range o.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return true
			}
		}
	case *corev1.Pod:
		return o.Status.Phase == corev1.PodFailed
	case *appsv1.Deployment:
		for _, c := range o.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
				return true
			}
		}
	}
	return false
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
