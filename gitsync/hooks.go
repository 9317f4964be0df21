package gitsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keelson/keelson/store"
)

// ErrHook marks a revision stopped by a hook that failed or did not finish
// within the sync's timeout.
var ErrHook = errors.New("gitsync: hook failed")

// LogReader reads the end of a container's log, as `kubectl logs --tail`
// does; the sync shows it in the status of a failed hook.
type LogReader interface {
	// TailLog returns the last lines of a container's log. Errors: any;
	// the status shows them instead of the log.
	TailLog(ctx context.Context, namespace, pod, container string, lines int) (string, error)
}

// hookLogLines is how many lines of a failed hook's log the status shows.
const hookLogLines = 20

// hookFailure is a hook that failed: the error people read, and its log's
// tail, which goes into the Sync's errors.
type hookFailure struct {
	hook *desired
	msg  string
	logs []string
}

func (f *hookFailure) Error() string {
	return fmt.Sprintf("%s hook %s (%s) failed: %s", f.hook.hook.phase, f.hook.key, f.hook.origin, f.msg)
}

func (f *hookFailure) Unwrap() error { return ErrHook }

// runHooks runs hooks one after the other; the first that fails stops the
// rest.
func (s *Syncer) runHooks(ctx context.Context, hooks []*desired) error {
	for _, h := range hooks {
		if err := s.runHook(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// runHook creates a hook's Job or Pod, after deleting the one an earlier
// run left (before-hook-creation), waits until it succeeds or fails, and
// deletes it as its policy says.
func (s *Syncer) runHook(ctx context.Context, h *desired) error {
	s.finish(h)
	obj, ok := h.obj.DeepCopyObject().(store.Object)
	if !ok {
		return fmt.Errorf("%w: copy hook %s", ErrApply, h.key)
	}
	if err := s.clearHook(ctx, h); err != nil {
		return err
	}
	if err := s.Store.Create(ctx, obj); err != nil {
		return &hookFailure{hook: h, msg: fmt.Sprintf("cannot create it: %v", err)}
	}
	s.log().Info("hook started", "hook", h.key.String(), "phase", h.hook.phase)
	ok, msg, err := s.waitHook(ctx, h)
	if err != nil {
		return err
	}
	if ok {
		s.log().Info("hook succeeded", "hook", h.key.String())
		if h.hook.deleteOnSuccess {
			s.deleteHook(ctx, h)
		}
		return nil
	}
	f := &hookFailure{hook: h, msg: msg, logs: s.hookLogs(ctx, h)}
	if h.hook.deleteOnFail {
		s.deleteHook(ctx, h)
	}
	return f
}

// clearHook deletes the object an earlier run of the hook left, when its
// policy says so; an object there that is not this sync's hook is never
// touched.
func (s *Syncer) clearHook(ctx context.Context, h *desired) error {
	cur, err := h.res.New()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrApply, err)
	}
	switch err := s.Store.Get(ctx, h.key.namespace, h.key.name, cur); {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("%w: read hook %s: %v", ErrApply, h.key, err)
	}
	if !isHook(cur) || cur.GetLabels()[LabelSource] != s.Name {
		return &hookFailure{hook: h, msg: "an object of that name exists and is not a hook of this sync; give the hook another name"}
	}
	if !h.hook.deleteBefore {
		return &hookFailure{hook: h, msg: fmt.Sprintf("an earlier run's object is still there; delete it, or add %s to annotation %s",
			"before-hook-creation", AnnotationHookDeletePolicy)}
	}
	rv := cur.GetResourceVersion()
	if err := s.Store.Delete(ctx, h.res, h.key.namespace, h.key.name, &metav1.Preconditions{ResourceVersion: &rv}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: delete the earlier run of hook %s: %v", ErrApply, h.key, err)
	}
	return nil
}

// deleteHook deletes a finished hook's object; its pods follow (their
// owner is gone). A failure is logged: the next run deletes it first.
func (s *Syncer) deleteHook(ctx context.Context, h *desired) {
	if err := s.Store.Delete(ctx, h.res, h.key.namespace, h.key.name, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log().Warn("cannot delete a finished hook", "hook", h.key.String(), "err", err)
	}
}

// waitHook waits until the hook's Job completes or fails, or its Pod
// succeeds or fails, for at most the sync's timeout. ok reports success;
// msg says why not.
func (s *Syncer) waitHook(ctx context.Context, h *desired) (ok bool, msg string, err error) {
	deadline := time.Now().Add(s.timeout())
	for {
		obj, err := h.res.New()
		if err != nil {
			return false, "", fmt.Errorf("%w: %v", ErrApply, err)
		}
		switch err := s.Store.Get(ctx, h.key.namespace, h.key.name, obj); {
		case errors.Is(err, store.ErrNotFound):
			return false, "its object was deleted while it ran", nil
		case err != nil:
			return false, "", fmt.Errorf("%w: read hook %s: %v", ErrApply, h.key, err)
		}
		if done, ok, msg := hookDone(obj); done {
			return ok, msg, nil
		}
		if !time.Now().Before(deadline) {
			return false, fmt.Sprintf("not finished after %s", s.timeout()), nil
		}
		if err := sleep(ctx, s.poll()); err != nil {
			return false, "", err
		}
	}
}

// hookDone reads whether a hook's object has finished, and how.
func hookDone(obj store.Object) (done, ok bool, msg string) {
	switch o := obj.(type) {
	case *batchv1.Job:
		for _, c := range o.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return true, true, ""
			case batchv1.JobFailed:
				return true, false, strings.TrimSpace(c.Reason + ": " + c.Message)
			}
		}
	case *corev1.Pod:
		switch o.Status.Phase {
		case corev1.PodSucceeded:
			return true, true, ""
		case corev1.PodFailed:
			return true, false, cmp.Or(strings.TrimSpace(o.Status.Reason+" "+o.Status.Message), "the pod failed")
		}
	}
	return false, false, ""
}

// hookLogs is the tail of a failed hook's log: its Pod's, or for a Job its
// newest pod's, first container that ran. Log lines are prefixed with the
// pod and container; when they cannot be read, one line says why.
func (s *Syncer) hookLogs(ctx context.Context, h *desired) []string {
	if s.Logs == nil {
		return nil
	}
	var pods []corev1.Pod
	switch h.obj.(type) {
	case *corev1.Pod:
		var p corev1.Pod
		if err := s.Store.Get(ctx, h.key.namespace, h.key.name, &p); err != nil {
			return []string{fmt.Sprintf("logs: %v", err)}
		}
		pods = []corev1.Pod{p}
	case *batchv1.Job:
		list, err := s.Store.List(ctx, store.MustResource("pods"), store.ListOptions{
			Namespace: h.key.namespace, Selector: labels.SelectorFromSet(labels.Set{"batch.kubernetes.io/job-name": h.key.name})})
		if err != nil {
			return []string{fmt.Sprintf("logs: %v", err)}
		}
		for _, o := range list.Items {
			if p, ok := o.(*corev1.Pod); ok {
				pods = append(pods, *p)
			}
		}
	}
	if len(pods) == 0 {
		return []string{"logs: the hook has no pod"}
	}
	p := slices.MaxFunc(pods, func(a, b corev1.Pod) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	container := p.Spec.Containers[0].Name
	for _, st := range p.Status.ContainerStatuses {
		if st.State.Terminated != nil && st.State.Terminated.ExitCode != 0 {
			container = st.Name
			break
		}
	}
	text, err := s.Logs.TailLog(ctx, p.Namespace, p.Name, container, hookLogLines)
	if err != nil {
		return []string{fmt.Sprintf("logs of pod %s container %s: %v", p.Name, container, err)}
	}
	var out []string
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		out = append(out, fmt.Sprintf("%s/%s: %s", p.Name, container, line))
	}
	return out
}
