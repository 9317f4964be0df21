package gitsync

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keelson/keelson/admission"
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
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				r.commit(map[string]string{"apps/app-0042/deploy.yaml": deployment("default", "app-0042", 2+i%2)})
				i++
				b.StartTimer()
				start := cpuTime()
				if err := l.SyncOnce(b.Context()); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - start
				if st := l.Status(); st.Updated != 1 || st.Unchanged != n-1 {
					b.Fatalf("status %+v", st)
				}
			}
			reportCPU(b, cpu, i)
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

// BenchmarkFirstSync measures the first sync of a repository of 10,000
// objects: read the tree, validate every file (empty cache), find none of the
// objects in the store and write them all, in as many transactions as etcd's
// request limit takes.
func BenchmarkFirstSync(b *testing.B) {
	const n = 10000
	r := bigRepo(b, n)
	var cpu time.Duration
	runs := 0
	for b.Loop() {
		b.StopTimer()
		s := newSyncer(b, "bench") // a store prefix and a cache of its own
		s.MaxTxnOps = 16384
		l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s}
		b.StartTimer()
		start := cpuTime()
		if err := l.SyncOnce(b.Context()); err != nil || l.Status().Created != n {
			b.Fatalf("first sync: %v, %+v", err, l.Status())
		}
		cpu += cpuTime() - start
		runs++
	}
	reportCPU(b, cpu, runs)
}

// cpuTime is the CPU time the process has used: the sync, the embedded etcd
// and the Go runtime. Unlike the wall time it does not grow with the load
// other processes put on the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per run as cpu-ms/op.
func reportCPU(b *testing.B, cpu time.Duration, runs int) {
	if runs > 0 {
		b.ReportMetric(float64(cpu)/float64(runs)/float64(time.Millisecond), "cpu-ms/op")
	}
}

// BenchmarkCommitToEtcdNotify measures what someone committing sees: a Loop
// running on a local repository of 10,000 objects and woken by fsnotify, from
// the moment the synced branch moves to a one-file commit (as a commit, a
// merge or a push into the repository moves it) until etcd holds the changed
// object. fsnotify's settle time counts. It reports the median and the 95th
// percentile over the commits (-benchtime 20x for the figure of issue #5).
func BenchmarkCommitToEtcdNotify(b *testing.B) {
	const n = 10000
	r := bigRepo(b, n)
	l, w, stop := notifyLoop(b, r, "", "default", "app-0042")
	defer stop()
	var took []time.Duration
	for b.Loop() {
		b.StopTimer()
		replicas := int32(2 + len(took)%2)
		c := r.commit(map[string]string{"apps/app-0042/deploy.yaml": deployment("default", "app-0042", int(replicas))})
		time.Sleep(100 * time.Millisecond) // the loop looks at the commit on main, finds deploy unmoved
		b.StartTimer()
		start := time.Now()
		r.setBranch("deploy", c)
		waitReplicas(b, w, replicas, l)
		took = append(took, time.Since(start))
	}
	stop()
	reportPercentiles(b, took)
}

// quotaRepo commits n objects as bigRepo does, spread over ten namespaces,
// and with quotas each namespace's ResourceQuota and LimitRange (limits
// with room for everything).
func quotaRepo(b *testing.B, n int, quotas bool) *testRepo {
	r := newRepo(b)
	files := map[string]string{}
	for i := range n / 10 {
		ns := fmt.Sprintf("team-%d", i%10)
		files[fmt.Sprintf("apps/app-%04d/deploy.yaml", i)] = deployment(ns, fmt.Sprintf("app-%04d", i), 1)
		var cms []string
		for j := range 9 {
			cms = append(cms, strings.Replace(configMap(fmt.Sprintf("cfg-%04d-%d", i, j), "v"), "metadata:\n", "metadata:\n  namespace: "+ns+"\n", 1))
		}
		files[fmt.Sprintf("apps/app-%04d/config.yaml", i)] = strings.Join(cms, "---\n")
	}
	if quotas {
		for i := range 10 {
			ns := fmt.Sprintf("team-%d", i)
			files["quotas/"+ns+".yaml"] = fmt.Sprintf(`apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: %[1]s}
spec:
  hard: {pods: "1000", requests.cpu: "100", configmaps: "10000", count/deployments.apps: "1000"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: defaults, namespace: %[1]s}
spec:
  limits:
  - {type: Container, defaultRequest: {cpu: 10m}}
`, ns)
		}
	}
	r.commit(files)
	return r
}

// BenchmarkFirstSyncQuota measures what quotas add to the first sync of
// 10,000 objects, side by side in one run: the same objects in ten
// namespaces without quotas on a store without admission, and with a
// ResourceQuota and a LimitRange in each namespace on a store with
// admission (the sync's check of the revision, the store's of each write).
func BenchmarkFirstSyncQuota(b *testing.B) {
	const n = 10000
	for _, quotas := range []bool{false, true} {
		name := "quotas=none"
		if quotas {
			name = "quotas=every-namespace"
		}
		b.Run(name, func(b *testing.B) {
			r := quotaRepo(b, n, quotas)
			want := n
			if quotas {
				want += 20
			}
			var cpu time.Duration
			runs := 0
			for b.Loop() {
				b.StopTimer()
				s := newSyncer(b, "bench")
				s.MaxTxnOps = 16384
				if quotas {
					s.Store.SetAdmitter(admission.New(s.Store))
				}
				l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s}
				b.StartTimer()
				start := cpuTime()
				if err := l.SyncOnce(b.Context()); err != nil || l.Status().Created != want {
					b.Fatalf("first sync: %v, %+v", err, l.Status())
				}
				cpu += cpuTime() - start
				runs++
			}
			reportCPU(b, cpu, runs)
		})
	}
}
