package gitsync

import (
	"fmt"
	"io"
	"strings"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// PlanStep is one step of the order a sync would apply a revision in: a
// wave's objects to create or change, or a hook run.
type PlanStep struct {
	// Wave is the step's wave; for post-apply and on-failure hooks, the
	// hook's own (they run after every wave).
	Wave int `json:"wave"`
	// Hook is the phase when the step runs hooks (pre-apply, post-apply,
	// on-failure); empty for a wave's objects.
	Hook string `json:"hook,omitempty"`
	// Objects are "Kind namespace/name", in the order they are written or
	// run.
	Objects []string `json:"objects"`
}

// String is one line: "wave -1: Namespace shop", "pre-apply hook (wave
// 0): Job shop/migrate".
func (s PlanStep) String() string {
	list := strings.Join(s.Objects, ", ")
	switch s.Hook {
	case "":
		return fmt.Sprintf("wave %d: %s", s.Wave, list)
	case keelsonv1alpha1.HookPreApply:
		return fmt.Sprintf("pre-apply hook (wave %d): %s", s.Wave, list)
	case keelsonv1alpha1.HookOnFailure:
		return "if the revision fails, on-failure hook: " + list
	}
	return s.Hook + " hook: " + list
}

// takeHooks removes the hooks from a side of a plan: they are run, not
// applied, so never planned as objects to create or delete.
func takeHooks(side map[key]*desired) []*desired {
	var hooks []*desired
	for k, d := range side {
		if d.hook != nil || isHook(d.obj) {
			if d.hook != nil {
				hooks = append(hooks, d)
			}
			delete(side, k)
		}
	}
	sortByWave(hooks)
	return hooks
}

// planOrder is the order a sync would apply the plan's head in, when it has
// waves or hooks: each wave's pre-apply hooks and objects to write, lowest
// wave first, then the post-apply hooks, then the on-failure hooks. Hooks
// run only when the revision changes objects, so a plan without changes
// has no order. nil too when the objects are all in one wave and there is
// no hook. Deletions, which come last, are not steps.
func planOrder(objs []*PlannedObject, hooks []*desired, head map[key]*desired) []PlanStep {
	if len(objs) == 0 {
		return nil
	}
	waves := map[int]bool{}
	for _, d := range head {
		waves[d.wave] = true
	}
	if len(hooks) == 0 && len(waves) < 2 {
		return nil
	}
	var writes []*PlannedObject
	for _, o := range objs {
		if o.Action != Delete {
			writes = append(writes, o)
		}
	}
	var steps []PlanStep
	add := func(wave int, hook, object string) {
		if n := len(steps); n > 0 && steps[n-1].Wave == wave && steps[n-1].Hook == hook {
			steps[n-1].Objects = append(steps[n-1].Objects, object)
			return
		}
		steps = append(steps, PlanStep{Wave: wave, Hook: hook, Objects: []string{object}})
	}
	pre := hooksOf(hooks, keelsonv1alpha1.HookPreApply)
	for len(writes) > 0 || len(pre) > 0 {
		switch {
		case len(pre) > 0 && (len(writes) == 0 || pre[0].wave <= writes[0].Wave):
			add(pre[0].wave, keelsonv1alpha1.HookPreApply, hookTitle(pre[0]))
			pre = pre[1:]
		default:
			add(writes[0].Wave, "", writes[0].Title())
			writes = writes[1:]
		}
	}
	for _, phase := range []string{keelsonv1alpha1.HookPostApply, keelsonv1alpha1.HookOnFailure} {
		for _, h := range hooksOf(hooks, phase) {
			add(h.wave, phase, hookTitle(h))
		}
	}
	return steps
}

func hookTitle(d *desired) string {
	return objectTitle(d.res.GVK.Kind, d.key.namespace, d.key.name)
}

// order writes the plan's order for a terminal.
func (t *textWriter) order(steps []PlanStep) {
	if len(steps) == 0 {
		return
	}
	t.printf(bold, "\nOrder:\n")
	for i, s := range steps {
		t.printf("", "  %d. %s\n", i+1, s)
	}
}

// writeOrderMarkdown writes the plan's order as a numbered list.
func writeOrderMarkdown(b io.StringWriter, steps []PlanStep) {
	if len(steps) == 0 {
		return
	}
	_, _ = b.WriteString("\n### Order\n\n")
	for i, s := range steps {
		_, _ = b.WriteString(fmt.Sprintf("%d. %s\n", i+1, mdEscape(s.String())))
	}
}
