package reconciler

import (
	"slices"
	"strconv"
	"strings"

	utilrand "k8s.io/apimachinery/pkg/util/rand"
)

// parseIndexes reads a list of completion indexes as Kubernetes writes it
// in a Job's status ("1,3-5,7"); what does not parse is skipped.
func parseIndexes(s string) []int {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				continue
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// formatIndexes writes sorted indexes as Kubernetes does: runs of three or
// more as "a-b", others one by one.
func formatIndexes(idx []int) string {
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx[i]))
		switch {
		case j-i >= 2:
			b.WriteString("-" + strconv.Itoa(idx[j]))
		case j == i+1:
			b.WriteString("," + strconv.Itoa(idx[j]))
		}
		i = j + 1
	}
	return b.String()
}

// addIndex adds i to a list of indexes in status form.
func addIndex(s string, i int) string {
	idx := parseIndexes(s)
	if slices.Contains(idx, i) {
		return s
	}
	idx = append(idx, i)
	slices.Sort(idx)
	return formatIndexes(idx)
}

// truncate cuts s to n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// randSuffix is the random end of a generated name.
func randSuffix() string { return utilrand.String(5) }
