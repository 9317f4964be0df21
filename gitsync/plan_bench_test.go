package gitsync

import (
	"testing"
)

// BenchmarkPlanOneFile plans a pull request that changes one file of a
// repository of 10,000 objects in 2,000 files: both trees are listed, and
// only the two versions of the changed file are read and validated. The
// schema is compiled once, as the command does before planning.
func BenchmarkPlanOneFile(b *testing.B) {
	r := bigRepo(b, 10000)
	base := r.commit(nil)
	head := r.commit(map[string]string{"apps/app-0042/deploy.yaml": deployment("default", "app-0042", 3)})
	opts := PlanOptions{Schema: testSchema(b)}
	for b.Loop() {
		p, err := PlanGit(b.Context(), r.dir, base, head, opts)
		if err != nil {
			b.Fatal(err)
		}
		if p.Changed != 1 || p.Created+p.Deleted != 0 || p.UntouchedFiles != 1999 || len(p.Errors) > 0 {
			b.Fatalf("plan: %d changed, %d created, %d deleted, %d untouched, errors %v", p.Changed, p.Created, p.Deleted, p.UntouchedFiles, p.Errors)
		}
	}
}
