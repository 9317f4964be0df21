package gitsync

import (
	"fmt"
	"testing"
)

// BenchmarkCommitToStore measures a one-file change in a repository of 1,000
// objects (100 Deployments, 900 ConfigMaps in 100 files): commit, resolve,
// read the tree, validate (unchanged files from the cache), diff against the
// store and write the one changed object.
func BenchmarkCommitToStore(b *testing.B) {
	r := newRepo(b)
	files := map[string]string{}
	for i := range 100 {
		files[fmt.Sprintf("apps/app-%03d/deploy.yaml", i)] = deployment("default", fmt.Sprintf("app-%03d", i), 1)
		cms := configMap(fmt.Sprintf("cfg-%03d-0", i), "v")
		for j := 1; j < 9; j++ {
			cms += "---\n" + configMap(fmt.Sprintf("cfg-%03d-%d", i, j), "v")
		}
		files[fmt.Sprintf("apps/app-%03d/config.yaml", i)] = cms
	}
	r.commit(files)
	s := newSyncer(b, "bench")
	s.MaxTxnOps = 16384
	src := NewLocalGit(r.dir, "main")
	res, err := syncNow(b, s, src)
	if err != nil || res.Created != 1000 {
		b.Fatalf("first sync: %v, %+v", err, res)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		r.commit(map[string]string{"apps/app-042/deploy.yaml": deployment("default", "app-042", 2+i%2)})
		b.StartTimer()
		res, err := syncNow(b, s, src)
		if err != nil || res.Updated != 1 || res.Unchanged != 999 {
			b.Fatalf("sync %d: %v, %d updated %d unchanged", i, err, res.Updated, res.Unchanged)
		}
	}
}
