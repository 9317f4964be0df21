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

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
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

// hookLogLines is how many lines of a failed hook's log the status shows;
// hookLogTimeout bounds reading them, so a node that does not answer does
// not hold the sync.
const (
	hookLogLines   = 20
	hookLogTimeout = 10 * time.Second
)

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

// runHooks runs hooks one after the other, but those that succeeded for
// this revision already (a retry after a lost race, or the sync finishing a
// revision a crash interrupted); the first that fails stops the rest.
func (s *Syncer) runHooks(ctx context.Context, hooks []*desired) error {
	for _, h := range hooks {
		if s.ran.has(h.rev, h.key) {
			continue
		}
		if err := s.runHook(ctx, h); err != nil {
			return err
		}
		if err := s.hookRan(ctx, h.rev, h.key); err != nil {
			// Harmless but for a crash before the revision ends: the hook
			// would run again then.
			s.log().Warn("cannot record a hook that ran", "hook", h.key.String(), "err", err)
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
	running, err := s.clearHook(ctx, h)
	if err != nil {
		return err
	}
	if running {
		s.log().Info("hook of this revision found running, waited for", "hook", h.key.String())
	} else {
		if err := s.Store.Create(ctx, obj); err != nil {
			return &hookFailure{hook: h, msg: fmt.Sprintf("cannot create it: %v", err)}
		}
		s.log().Info("hook started", "hook", h.key.String(), "phase", h.hook.phase)
	}
	ok, msg, timedOut, err := s.waitHook(ctx, h)
	if err != nil {
		return err
	}
	if timedOut {
		// Stopped, so that it does not run on beside the on-failure hooks
		// or into the next revision's run.
		f := &hookFailure{hook: h, msg: msg, logs: s.hookLogs(ctx, h)}
		s.deleteHook(ctx, h)
		return f
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

// clearHook makes way for a run of the hook: the object an earlier run
// left is deleted when the policy says so. running reports a run of this
// very revision still under way (started before a crash or a lost
// leadership), which is waited for rather than started again. An object
// there that is not this sync's hook is never touched.
func (s *Syncer) clearHook(ctx context.Context, h *desired) (running bool, err error) {
	cur, err := s.get(ctx, h.res, h.key.namespace, h.key.name)
	if err != nil || cur == nil {
		return false, errRead(h, err)
	}
	if !isHook(cur) || cur.GetLabels()[LabelSource] != s.Name {
		return false, &hookFailure{hook: h, msg: "an object of that name exists and is not a hook of this sync; give the hook another name"}
	}
	if done, _, _ := hookDone(cur); !done && cur.GetAnnotations()[AnnotationRevision] == h.rev && cur.GetDeletionTimestamp() == nil {
		return true, nil
	}
	if !h.hook.deleteBefore {
		return false, &hookFailure{hook: h, msg: fmt.Sprintf("the object of an earlier run is still there, and the hook's %s lacks %s; add it, or give the hook a new name",
			AnnotationHookDeletePolicy, keelsonv1alpha1.HookDeleteBeforeCreation)}
	}
	rv := cur.GetResourceVersion()
	if err := s.Store.Delete(ctx, h.res, h.key.namespace, h.key.name, &metav1.Preconditions{ResourceVersion: &rv}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("%w: delete the earlier run of hook %s: %v", ErrApply, h.key, err)
	}
	return false, nil
}

// errRead is the error of a hook's object that cannot be read; nil for nil.
func errRead(h *desired, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: read hook %s: %v", ErrApply, h.key, err)
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
func (s *Syncer) waitHook(ctx context.Context, h *desired) (ok bool, msg string, timedOut bool, err error) {
	deadline := time.Now().Add(s.timeout())
	for {
		obj, err := s.get(ctx, h.res, h.key.namespace, h.key.name)
		switch {
		case err != nil:
			return false, "", false, errRead(h, err)
		case obj == nil:
			return false, "its object was deleted while it ran", false, nil
		}
		if done, ok, msg := hookDone(obj); done {
			return ok, msg, false, nil
		}
		if !time.Now().Before(deadline) {
			return false, fmt.Sprintf("not finished after %s; stopped", s.timeout()), true, nil
		}
		if err := sleep(ctx, s.poll()); err != nil {
			return false, "", false, fmt.Errorf("%w: hook %s: %w", ErrApply, h.key, err)
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
// newest pod's; of the first container that exited with an error, else of
// the first container. Log lines are prefixed with the
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
		var j batchv1.Job
		if err := s.Store.Get(ctx, h.key.namespace, h.key.name, &j); err != nil {
			return []string{fmt.Sprintf("logs: %v", err)}
		}
		// By the Job's uid: a Job of the same name from an earlier run may
		// have left pods not collected yet.
		list, err := s.Store.List(ctx, store.MustResource("pods"), store.ListOptions{
			Namespace: h.key.namespace, Selector: labels.SelectorFromSet(labels.Set{batchv1.ControllerUidLabel: string(j.UID)})})
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
	ctx, cancel := context.WithTimeout(ctx, hookLogTimeout)
	defer cancel()
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
