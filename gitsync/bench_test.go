package gitsync

import (
	"fmt"
	"testing"
)

// bigRepo commits n objects: one Deployment and nine ConfigMaps per folder,
// in two files.
func bigRepo(b *testing.B, n int) *testRepo {
	r := newRepo(b)
	files := map[string]string{}
	for i := range n / 10 {
		files[fmt.Sprintf("apps/app-%04d/deploy.yaml", i)] = deployment("default", fmt.Sprintf("app-%04d", i), 1)
		cms := configMap(fmt.Sprintf("cfg-%04d-0", i), "v")
		for j := 1; j < 9; j++ {
			cms += "---\n" + configMap(fmt.Sprintf("cfg-%04d-%d", i, j), "v")
		}
		files[fmt.Sprintf("apps/app-%04d/config.yaml", i)] = cms
	}
	r.commit(files)
	return r
}

func syncedLoop(b *testing.B, n int) (*testRepo, *Loop) {
	r := bigRepo(b, n)
	s := newSyncer(b, "bench")
	s.MaxTxnOps = 16384 // keelson's embedded etcd
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s}
	if err := l.SyncOnce(b.Context()); err != nil || l.Status().Created != n {
		b.Fatalf("first sync: %v, %+v", err, l.Status())
	}
	return r, l
}

// BenchmarkCommitToStore measures a one-file change in a repository of n
// objects: resolve the commit, read its tree, validate (unchanged files from
// the cache), diff against the store and write the one changed object.
func BenchmarkCommitToStore(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			r, l := syncedLoop(b, n)
			i := 0
			for b.Loop() {
				b.StopTimer()
				r.commit(map[string]string{"apps/app-0042/deploy.yaml": deployment("default", "app-0042", 2+i%2)})
				i++
				b.StartTimer()
				if err := l.SyncOnce(b.Context()); err != nil {
					b.Fatal(err)
				}
				if st := l.Status(); st.Updated != 1 || st.Unchanged != n-1 {
					b.Fatalf("status %+v", st)
				}
			}
		})
	}
}

// BenchmarkPollUnchanged measures a poll that finds the applied revision.
func BenchmarkPollUnchanged(b *testing.B) {
	_, l := syncedLoop(b, 1000)
	for b.Loop() {
		if err := l.SyncOnce(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	if st := l.Status(); st.Attempts != 1 {
		b.Fatalf("polls re-synced: %d attempts", st.Attempts)
	}
}
