package gitsync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/store"
)

// kustomizeRepo commits a base of n objects (bigRepo's files under base/,
// listed by base/kustomization.yaml) and an overlay, overlays/prod, that
// puts them in namespace prod and patches the replicas of app-0042.
func kustomizeRepo(b *testing.B, n int) *testRepo {
	r := newRepo(b)
	files := map[string]string{}
	var resources []string
	for i := range n / 10 {
		dir := fmt.Sprintf("app-%04d", i)
		files["base/"+dir+"/deploy.yaml"] = deployment("prod", dir, 1)
		cms := configMap(fmt.Sprintf("cfg-%04d-0", i), "v")
		for j := 1; j < 9; j++ {
			cms += "---\n" + configMap(fmt.Sprintf("cfg-%04d-%d", i, j), "v")
		}
		files["base/"+dir+"/config.yaml"] = cms
		resources = append(resources, "  - "+dir+"/deploy.yaml", "  - "+dir+"/config.yaml")
	}
	files["base/kustomization.yaml"] = "resources:\n" + strings.Join(resources, "\n") + "\n"
	files["overlays/prod/kustomization.yaml"] = "namespace: prod\nresources:\n  - ../../base\n  - namespace.yaml\npatches:\n  - path: replicas.yaml\n"
	files["overlays/prod/replicas.yaml"] = overlayPatch(1)
	files["overlays/prod/namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n"
	r.commit(files)
	return r
}

func overlayPatch(replicas int) string {
	return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-0042\n  namespace: prod\nspec:\n  replicas: %d\n", replicas)
}

// BenchmarkCommitToEtcdKustomize is BenchmarkCommitToEtcdNotify for a
// repository kept as a kustomize overlay of a 1,000-object base: a commit
// changes the overlay's patch of one Deployment, so the part of the split
// build holding that Deployment is built again (kustomize on the tree in
// memory), the overlay's 1,000 objects are validated (999 from the cache)
// and the one changed is written. Median and 95th percentile over the
// commits, from the branch moving to etcd holding the change.
func BenchmarkCommitToEtcdKustomize(b *testing.B) {
	const n = 1000
	r := kustomizeRepo(b, n)
	l, w, stop := notifyLoop(b, r, "overlays/prod", "prod", "app-0042")
	defer stop()
	if st := l.Status(); st.Created != n+1 {
		b.Fatalf("first sync created %d objects, want %d (and the namespace)", st.Created, n)
	}
	var took []time.Duration
	for b.Loop() {
		b.StopTimer()
		replicas := int32(2 + len(took)) // never a content seen before: the cache keeps two renderings
		c := r.commit(map[string]string{"overlays/prod/replicas.yaml": overlayPatch(int(replicas))})
		time.Sleep(100 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		r.setBranch("deploy", c)
		waitReplicas(b, w, replicas, l)
		took = append(took, time.Since(start))
	}
	stop()
	reportPercentiles(b, took)
}

// notifyLoop runs a Loop on branch deploy of r (set to its head), syncing
// path, until its first sync; it returns the loop, a watch of the
// Deployment ns/name, and what stops both (safe to call twice).
func notifyLoop(b *testing.B, r *testRepo, path, ns, name string) (*Loop, watch.Interface, func()) {
	head, err := r.repo.Head()
	if err != nil {
		b.Fatal(err)
	}
	r.setBranch("deploy", head.Hash().String())
	s := newSyncer(b, "bench")
	s.MaxTxnOps = 16384
	s.Path = path
	l := &Loop{Source: NewLocalGit(r.dir, "deploy"), Syncer: s, Interval: time.Hour}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		<-done
	})
	for l.Status().LastApplied.ID == "" {
		if st := l.Status(); st.Attempts > 0 && st.Reason != ReasonSucceeded {
			stop()
			b.Fatalf("first sync: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := store.ResourceOf(&appsv1.Deployment{})
	if err != nil {
		stop()
		b.Fatal(err)
	}
	w, err := s.Store.Watch(ctx, res, store.WatchOptions{Namespace: ns, Name: name})
	if err != nil {
		stop()
		b.Fatal(err)
	}
	return l, w, func() {
		w.Stop()
		stop()
	}
}

func waitReplicas(b *testing.B, w watch.Interface, replicas int32, l *Loop) {
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("watch ended")
			}
			if d, isDeploy := ev.Object.(*appsv1.Deployment); isDeploy && *d.Spec.Replicas == replicas {
				return
			}
		case <-time.After(time.Minute):
			b.Fatalf("commit not in etcd after a minute: %+v", l.Status())
		}
	}
}

func reportPercentiles(b *testing.B, took []time.Duration) {
	slices.Sort(took)
	pct := func(p int) float64 {
		i := (len(took)*p+99)/100 - 1 // nearest rank
		return float64(took[max(i, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(95), "p95-ms")
}
