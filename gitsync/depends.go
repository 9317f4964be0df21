package gitsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/health"
	"github.com/keelson/keelson/store"
)

// ErrDependency marks a revision that waits for the sources it depends on
// (Config.DependsOn): nothing was read or applied; the loop looks again
// every dependencyRetry.
var ErrDependency = errors.New("gitsync: dependency not ready")

// dependencyRetry is how often a loop waiting for its dependencies looks at
// them again: their health changes without a sync of theirs.
const dependencyRetry = 5 * time.Second

// checkDependencies refuses a list of sources (named) in which a source depends on
// itself, on a source that is not in the list, or on a cycle; each problem
// names the sources.
func checkDependencies(cfgs []Config) error {
	deps := map[string][]string{}
	for _, c := range cfgs {
		deps[c.Name] = c.DependsOn
	}
	var errs []error
	for _, c := range cfgs {
		for _, d := range c.DependsOn {
			if _, ok := deps[d]; !ok {
				errs = append(errs, fmt.Errorf("%w: source %s depends on %q, which is not a source here", ErrConfig, c.Name, d))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if cycle := findCycle(deps); cycle != nil {
		return fmt.Errorf("%w: sources depend on each other in a cycle: %s", ErrConfig, strings.Join(cycle, " → "))
	}
	return nil
}

// findCycle returns the names along one cycle of deps (the first name
// again at the end), or nil.
func findCycle(deps map[string][]string) []string {
	const (
		unseen = iota
		onPath
		finished
	)
	state := map[string]int{}
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		state[n] = onPath
		path = append(path, n)
		for _, d := range deps[n] {
			switch state[d] {
			case onPath:
				i := slices.Index(path, d)
				return append(slices.Clone(path[i:]), d)
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = finished
		return nil
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	slices.Sort(names) // the same cycle reported every time
	for _, n := range names {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// dependenciesReady reads the Sync of every source this one depends on and
// returns "" when each is Ready (its last attempt applied its revision) and
// Healthy (the reconciler's roll-up of that revision passes, as a wave's
// gate does), or else a sentence naming the first that is not, and what
// (the source and the condition, without the changing details).
func dependenciesReady(ctx context.Context, st *store.Store, deps []string) (msg, what string, err error) {
	for _, name := range deps {
		s := &keelsonv1alpha1.Sync{}
		switch err := st.Get(ctx, "", name, s); {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Sprintf("source %s has not synced yet", name), name + " absent", nil
		case err != nil:
			return "", "", fmt.Errorf("%w: read source %s: %v", ErrApply, name, err)
		}
		ready := meta.FindStatusCondition(s.Status.Conditions, keelsonv1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue {
			msg := "it has not applied a revision yet"
			if ready != nil {
				msg = ready.Reason + ": " + ready.Message
			}
			return fmt.Sprintf("source %s is not Ready (%s)", name, msg), name + " not ready", nil
		}
		h := s.Status.Health
		if h == nil || h.Revision != s.Status.LastAppliedRevision {
			return fmt.Sprintf("source %s: the health of revision %s is not known yet", name, Revision{ID: s.Status.LastAppliedRevision}.Short()), name + " health unknown", nil
		}
		if !passes(health.Health{Status: health.Status(h.Status)}) {
			return fmt.Sprintf("source %s is not Healthy (%s: %s)", name, h.Status, h.Message), name + " " + h.Status, nil
		}
	}
	return "", "", nil
}
