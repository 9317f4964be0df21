package gitsync

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// Order within a revision. Objects carry a wave (AnnotationWave, 0 when
// absent); the waves are applied lowest first and kinds in kindOrder within
// one. A wave's objects are Healthy before a later wave's are written, so a
// namespace or a database in wave -1 is there before the application in
// wave 0. Jobs and Pods annotated as hooks (AnnotationHook) are not objects
// of the revision — never in its inventory, never pruned — but run at a
// point of its apply: a pre-apply hook after the waves below its own are
// Healthy and before its wave is written; post-apply hooks, in wave order,
// once every object is written and Healthy; on-failure hooks when a hook or
// a health check fails the revision. Hooks run only when the revision
// changes objects as Git says, never on a resync that changes nothing or
// only puts back drift, so a migration runs once per change.

const (
	AnnotationWave             = keelsonv1alpha1.AnnotationWave
	AnnotationHook             = keelsonv1alpha1.AnnotationHook
	AnnotationHookDeletePolicy = keelsonv1alpha1.AnnotationHookDeletePolicy
)

// maxWave bounds a wave's number, so that a typo ("10000000") reads as one.
const maxWave = 1000

// hookSpec says when a hook runs and when its object is deleted.
type hookSpec struct {
	phase                                       string // keelsonv1alpha1.Hook*
	deleteBefore, deleteOnSuccess, deleteOnFail bool
}

// ordering reads the wave and the hook annotations of a loaded object;
// every problem names the annotation.
func ordering(o *schema.Object, obj store.Object) (wave int, hook *hookSpec, problems schema.ErrorList) {
	ann := obj.GetAnnotations()
	if v, ok := ann[AnnotationWave]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil:
			problems = append(problems, errAt(o, fmt.Sprintf("annotation %s: %q is not an integer; waves are numbers like \"-1\", \"0\", \"5\"", AnnotationWave, v)))
		case n < -maxWave || n > maxWave:
			problems = append(problems, errAt(o, fmt.Sprintf("annotation %s: %d is out of range: waves go from %d to %d", AnnotationWave, n, -maxWave, maxWave)))
		default:
			wave = n
		}
	}
	phase, ok := ann[AnnotationHook]
	if !ok {
		if _, ok := ann[AnnotationHookDeletePolicy]; ok {
			problems = append(problems, errAt(o, fmt.Sprintf("annotation %s applies to hooks only: add %s, or remove it", AnnotationHookDeletePolicy, AnnotationHook)))
		}
		return wave, nil, problems
	}
	hook = &hookSpec{phase: phase, deleteBefore: true}
	switch phase {
	case keelsonv1alpha1.HookPreApply, keelsonv1alpha1.HookPostApply, keelsonv1alpha1.HookOnFailure:
	default:
		problems = append(problems, errAt(o, fmt.Sprintf("annotation %s: %q is not a hook phase: want %s, %s or %s",
			AnnotationHook, phase, keelsonv1alpha1.HookPreApply, keelsonv1alpha1.HookPostApply, keelsonv1alpha1.HookOnFailure)))
	}
	switch p := obj.(type) {
	case *batchv1.Job:
	case *corev1.Pod:
		if p.Spec.RestartPolicy == corev1.RestartPolicyAlways || p.Spec.RestartPolicy == "" {
			problems = append(problems, errAt(o, fmt.Sprintf("a hook Pod must end: set spec.restartPolicy to Never or OnFailure (it is %q)", cmp.Or(string(p.Spec.RestartPolicy), "Always"))))
		}
	default:
		problems = append(problems, errAt(o, fmt.Sprintf("annotation %s: a hook is a Job or a Pod, not a %s", AnnotationHook, o.Kind)))
	}
	if v, ok := ann[AnnotationHookDeletePolicy]; ok {
		hook.deleteBefore = false
		for p := range strings.SplitSeq(v, ",") {
			switch strings.TrimSpace(p) {
			case keelsonv1alpha1.HookDeleteBeforeCreation:
				hook.deleteBefore = true
			case keelsonv1alpha1.HookDeleteSucceeded:
				hook.deleteOnSuccess = true
			case keelsonv1alpha1.HookDeleteFailed:
				hook.deleteOnFail = true
			default:
				problems = append(problems, errAt(o, fmt.Sprintf("annotation %s: %q is not a delete policy: want %s, %s or %s, comma-separated",
					AnnotationHookDeletePolicy, strings.TrimSpace(p), keelsonv1alpha1.HookDeleteBeforeCreation, keelsonv1alpha1.HookDeleteSucceeded, keelsonv1alpha1.HookDeleteFailed)))
			}
		}
	}
	return wave, hook, problems
}

// splitHooks takes the hooks out of the revision's objects: they are run,
// not synced.
func splitHooks(list []*desired, byKey map[key]*desired) (objects, hooks []*desired) {
	objects = list[:0:0]
	for _, d := range list {
		if d.hook != nil {
			hooks = append(hooks, d)
			delete(byKey, d.key)
			continue
		}
		objects = append(objects, d)
	}
	sortByWave(hooks)
	return objects, hooks
}

// sortByWave orders hooks by wave, then kind order and name, so that runs
// repeat.
func sortByWave(ds []*desired) {
	slices.SortStableFunc(ds, func(a, b *desired) int {
		return cmp.Or(cmp.Compare(a.wave, b.wave), cmp.Compare(kindOrder(a.res.GVK.Kind), kindOrder(b.res.GVK.Kind)), cmp.Compare(a.key.String(), b.key.String()))
	})
}

// isHook reports whether a stored object is a hook's: those are run by the
// sync, not part of what it applies or prunes.
func isHook(o store.Object) bool {
	_, ok := o.GetAnnotations()[AnnotationHook]
	return ok
}

// stage is one wave of a revision's apply.
type stage struct {
	wave int
	// pre are the wave's pre-apply hooks, run before its writes.
	pre []*desired
	// writes are its creations, updates and replacements, in kind order.
	writes []*Change
	// objects are all its objects, unchanged ones too: those a later wave
	// waits to be Healthy.
	objects []*Change
}

// stagesOf groups the revision's objects and pre-apply hooks by wave,
// lowest first; deletions are not in any stage (they come last).
func stagesOf(changes []*Change, pre []*desired) []*stage {
	byWave := map[int]*stage{}
	get := func(w int) *stage {
		if st := byWave[w]; st != nil {
			return st
		}
		st := &stage{wave: w}
		byWave[w] = st
		return st
	}
	for _, c := range changes {
		if c.Action == Delete {
			continue
		}
		st := get(c.wave)
		st.objects = append(st.objects, c)
		if c.Action != Unchanged {
			st.writes = append(st.writes, c)
		}
	}
	for _, h := range pre {
		st := get(h.wave)
		st.pre = append(st.pre, h)
	}
	out := make([]*stage, 0, len(byWave))
	for _, st := range byWave {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *stage) int { return cmp.Compare(a.wave, b.wave) })
	return out
}

// hooksOf returns the hooks of one phase, in wave order.
func hooksOf(hooks []*desired, phase string) []*desired {
	var out []*desired
	for _, h := range hooks {
		if h.hook.phase == phase {
			out = append(out, h)
		}
	}
	return out
}
