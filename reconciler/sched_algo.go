package reconciler

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// fitError says why no node fits a pod, in kube-scheduler's words:
// "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated
// taint {dedicated: db}."
type fitError struct {
	nodes   int
	reasons map[string]int
}

func (e *fitError) Error() string {
	if e.nodes == 0 {
		return "0/0 nodes are available: no nodes registered."
	}
	type kv struct {
		reason string
		count  int
	}
	var rs []kv
	for r, n := range e.reasons {
		rs = append(rs, kv{r, n})
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].count != rs[j].count {
			return rs[i].count > rs[j].count
		}
		return rs[i].reason < rs[j].reason
	})
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d %s", r.count, r.reason)
	}
	return fmt.Sprintf("0/%d nodes are available: %s.", e.nodes, strings.Join(parts, ", "))
}

// minFeasibleNodes and the percentage below follow kube-scheduler's
// percentageOfNodesToScore: in a big cluster, stop looking once enough
// feasible nodes are found, starting each search where the last one stopped
// so that every node gets its turn.
const minFeasibleNodes = 100

func feasibleToFind(all int) int {
	if all < minFeasibleNodes {
		return all
	}
	pct := max(50-all/125, 5)
	return max(all*pct/100, minFeasibleNodes)
}

// scheduleLocked picks the node for c and assumes the pod onto it; the
// caller holds c.mu. It returns a *fitError when no node fits.
func (sc *schedCache) scheduleLocked(c *candidate, rnd *rand.Rand) (string, error) {
	all := len(sc.order)
	want := feasibleToFind(all)
	if len(sc.anti) > 0 || len(c.podAff)+len(c.antiAffinity)+len(c.preferredPods) > 0 {
		c.podAffinity = sc.podAffinityStateLocked(c, sc.nsLabels)
	}
	if len(c.spread) > 0 {
		sc.spreadStateLocked(c)
	}
	if c.info.owner != "" {
		c.owned = sc.owned[c.info.owner]
	}
	feasible := make([]scored, 0, want)
	ferr := &fitError{nodes: all, reasons: map[string]int{}}
	start := sc.next
	checked := 0
	for ; checked < all && len(feasible) < want; checked++ {
		n := sc.order[(start+checked)%all]
		if reasons := fits(c, n); reasons != nil {
			for _, r := range reasons {
				ferr.reasons[r]++
			}
			continue
		}
		feasible = append(feasible, scored{n: n})
	}
	if all > 0 {
		sc.next = (start + checked) % all
	}
	if len(feasible) == 0 {
		return "", ferr
	}
	best := pickBest(c, feasible, rnd)
	pi := *c.info // computed once for the candidate
	pi.node, pi.assumed = best.name, true
	sc.addLocked(&pi)
	return best.name, nil
}

// pickBest scores the feasible nodes and returns the best one, choosing
// uniformly among ties.
func pickBest(c *candidate, feasible []scored, rnd *rand.Rand) *nodeInfo {
	if len(feasible) == 1 {
		return feasible[0].n
	}
	scoreNodes(c, feasible)
	best, ties := 0, 1
	for i := 1; i < len(feasible); i++ {
		switch {
		case feasible[i].score > feasible[best].score:
			best, ties = i, 1
		case feasible[i].score == feasible[best].score:
			ties++
			if rnd.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return feasible[best].n
}

// schedule picks a node for c and assumes the pod there, under the lock.
func (sc *schedCache) schedule(c *candidate, rnd *rand.Rand) (string, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.scheduleLocked(c, rnd)
}
