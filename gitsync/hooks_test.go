package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// hookRuns counts the objects created under one name: each creation of a
// hook's Job is one run.
type hookRuns struct {
	mu   sync.Mutex
	uids map[string][]types.UID // "ns/name" → uid of each creation
	st   *store.Store
	n    int // markers written (settle)
}

func watchJobs(t *testing.T, st *store.Store) *hookRuns {
	t.Helper()
	r := &hookRuns{uids: map[string][]types.UID{}, st: st}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := st.Watch(ctx, store.MustResource("jobs.batch"), store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok || ev.Type != watch.Added {
				continue
			}
			r.mu.Lock()
			k := j.Namespace + "/" + j.Name
			r.uids[k] = append(r.uids[k], j.UID)
			r.mu.Unlock()
		}
	}()
	return r
}

// settle returns once the watch has delivered every creation so far: it
// writes a marker Job (suspended: no pod) and waits for it, as a watch
// delivers in the store's order.
func (r *hookRuns) settle(t *testing.T) {
	t.Helper()
	r.n++
	name := fmt.Sprintf("marker-%d", r.n)
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: batchv1.JobSpec{Suspend: ptr.To(true)}}
	if err := r.st.Create(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	r.waitRuns(t, "default/"+name, 1)
}

// count is how many times k was created, as far as the watch has told.
func (r *hookRuns) count(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.uids[k])
}

// waitRuns waits until k was created n times (a hang guard only).
func (r *hookRuns) waitRuns(t *testing.T, k string, n int) {
	t.Helper()
	eventually(t, k+" created", func() bool { return r.count(k) >= n })
}

// A write that loses a race with another writer is retried from a fresh
// diff, but the hooks that ran for the revision do not run again.
func TestLostRaceRunsNoHookTwice(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	runs := watchJobs(t, st)
	repo := newRepo(t)
	settings := func(v string) string {
		return strings.Replace(configMap("settings", v), "metadata:\n", "metadata:\n  namespace: shop\n", 1)
	}
	job := func(round string) string { return hookJob("migrate", 0, ", round: \""+round+"\"") }
	repo.commit(map[string]string{"ns.yaml": waveNamespace, "cm.yaml": settings("1"), "migrate.yaml": job("1")})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	repo.commit(map[string]string{"cm.yaml": settings("2"), "migrate.yaml": job("2")})
	var once sync.Once
	l.Syncer.beforeWrite = func() {
		// Someone else writes the ConfigMap after the diff: the
		// revision's compare-and-swap on it fails once the hook has run.
		once.Do(func() {
			var cm corev1.ConfigMap
			if err := st.Get(t.Context(), "shop", "settings", &cm); err != nil {
				t.Error(err)
				return
			}
			cm.Labels = map[string]string{"touched": "yes"}
			if err := st.Update(t.Context(), &cm); err != nil {
				t.Error(err)
			}
		})
	}
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("second revision: %v", err)
	}
	runs.settle(t)
	if n := runs.count("shop/migrate"); n != 2 {
		t.Errorf("the hook was created %d times for two revisions, want 2: a lost race ran it again", n)
	}
	// The other writer's label is gone: it wrote before the revision's
	// write, which lost the race and was retried.
	var cm corev1.ConfigMap
	if err := st.Get(t.Context(), "shop", "settings", &cm); err != nil || cm.Data["key"] != "2" || cm.Labels["touched"] != "" {
		t.Errorf("ConfigMap after the retried write: data %v, labels %v, err %v", cm.Data, cm.Labels, err)
	}
}

// Resyncs run no hook: neither one that changes nothing, nor one that puts
// back an object deleted behind Git's back, nor one of a new process that
// knows nothing of what it applied before.
func TestResyncRunsNoHook(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	runs := watchJobs(t, st)
	repo := newRepo(t)
	repo.commit(map[string]string{"ns.yaml": waveNamespace, "cm.yaml": strings.Replace(configMap("settings", "1"), "metadata:\n", "metadata:\n  namespace: shop\n", 1),
		"migrate.yaml": hookJob("migrate", 0, "")})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	runs.waitRuns(t, "shop/migrate", 1)
	drift := func() {
		t.Helper()
		if err := st.Delete(t.Context(), store.MustResource("configmaps"), "shop", "settings", nil); err != nil {
			t.Fatal(err)
		}
	}
	drift()
	l.Resync = time.Nanosecond
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A new process: its loop takes up from the Sync object.
	drift()
	l2 := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l2.resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	l2.Resync = time.Nanosecond
	if err := l2.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := st.Get(t.Context(), "shop", "settings", &cm); err != nil {
		t.Errorf("the deleted ConfigMap was not put back: %v", err)
	}
	runs.settle(t)
	if n := runs.count("shop/migrate"); n != 1 {
		t.Errorf("the pre-apply hook ran %d times, want once: a resync ran it", n)
	}
}

// A revision that failed a hook is not tried again after the source
// failed once in between, nor after a restart.
func TestFailedHookNotRetriedAfterAFetchError(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	runs := watchJobs(t, st)
	repo := newRepo(t)
	repo.commit(map[string]string{"ns.yaml": waveNamespace, "migrate.yaml": hookJob("migrate", 1, ""), "web.yaml": webDeployment("1", "yes")})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l.SyncOnce(t.Context()); !errors.Is(err, ErrHook) {
		t.Fatalf("err = %v, want ErrHook", err)
	}
	moved := repo.dir + ".away"
	if err := os.Rename(repo.dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncOnce(t.Context()); !errors.Is(err, ErrFetch) {
		t.Fatalf("with the repository gone: err = %v, want ErrFetch", err)
	}
	if err := os.Rename(moved, repo.dir); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	l2 := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l2.resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := l2.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	runs.settle(t)
	if n := runs.count("shop/migrate"); n != 1 {
		t.Errorf("the failing hook ran %d times, want once", n)
	}
}

// A server that stops after a staged revision's last write finishes it
// when it starts again: the post-apply hooks run then, and the pre-apply
// hooks that ran do not run again.
func TestInterruptedRevisionRunsItsRemainingHooks(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	runs := watchJobs(t, st)
	repo := newRepo(t)
	post := strings.NewReplacer("name: migrate", "name: verify", "pre-apply", "post-apply").Replace(hookJob("migrate", 0, ""))
	repo.commit(map[string]string{"ns.yaml": waveNamespace, "migrate.yaml": hookJob("migrate", 0, ""),
		"verify.yaml": post, "web.yaml": webDeployment("1", "yes")})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	ctx, stop := context.WithCancel(t.Context())
	l.Syncer.afterTxn = func(n int) {
		if n == 2 { // wave -1, then wave 0: every write is in
			stop()
		}
	}
	if err := l.SyncOnce(ctx); err == nil {
		t.Fatal("the stopped apply succeeded")
	}
	sync := &keelsonv1alpha1.Sync{}
	if err := st.Get(t.Context(), "", "shop", sync); err != nil {
		t.Fatal(err)
	}
	if sync.Status.PendingRevision == "" || !strings.Contains(strings.Join(sync.Status.PendingHooks, ","), "shop/migrate") {
		t.Fatalf("after the stop: pending %q, hooks that ran %v", sync.Status.PendingRevision, sync.Status.PendingHooks)
	}
	runs.settle(t)
	if runs.count("shop/verify") != 0 {
		t.Fatal("the post-apply hook ran before the stop")
	}
	l2 := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l2.SyncOnce(t.Context()); err != nil {
		t.Fatalf("the revision taken up again: %v\n%v", err, l2.Status().Errors)
	}
	runs.settle(t)
	if m, v := runs.count("shop/migrate"), runs.count("shop/verify"); m != 1 || v != 1 {
		t.Errorf("pre-apply hook ran %d times, post-apply %d; want once each", m, v)
	}
	if err := st.Get(t.Context(), "", "shop", sync); err != nil {
		t.Fatal(err)
	}
	if sync.Status.PendingRevision != "" || len(sync.Status.PendingHooks) != 0 {
		t.Errorf("after the revision ended: pending %q, hooks %v", sync.Status.PendingRevision, sync.Status.PendingHooks)
	}
}

// A hook of the revision found running (started before a stop) is waited
// for, not deleted and started again; one that does not end in time is
// stopped.
func TestRunningHookIsWaitedFor(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	runs := watchJobs(t, st)
	repo := newRepo(t)
	forever := strings.Replace(hookJob("migrate", 0, ""), "labels: {exit-code: \"0\"}", "labels: {app: migrate}", 1)
	repo.commit(map[string]string{"ns.yaml": waveNamespace, "migrate.yaml": forever, "web.yaml": webDeployment("1", "yes")})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	ctx, stop := context.WithCancel(t.Context())
	go func() {
		for runs.count("shop/migrate") == 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		stop()
	}()
	if err := l.SyncOnce(ctx); err == nil {
		t.Fatal("the stopped apply succeeded")
	}
	l2 := orderedLoop(t, st, repo.dir, Config{Name: "shop", Timeout: time.Second})
	err := l2.SyncOnce(t.Context())
	if !errors.Is(err, ErrHook) || !strings.Contains(err.Error(), "not finished after 1s; stopped") {
		t.Fatalf("err = %v, want the hook found running to time out", err)
	}
	runs.settle(t)
	if n := runs.count("shop/migrate"); n != 1 {
		t.Errorf("the hook was created %d times, want once: the run under way was waited for", n)
	}
	var j batchv1.Job
	if err := st.Get(t.Context(), "shop", "migrate", &j); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the hook that timed out is still there (%v): it must be stopped", err)
	}
}

// An object a hook left becomes an object of the revision when the hook's
// manifest loses its annotation: it takes the hook's place.
func TestHookBecomesAnObject(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	repo := newRepo(t)
	repo.commit(map[string]string{"ns.yaml": waveNamespace, "migrate.yaml": hookJob("migrate", 0, "")})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	repo.commit(map[string]string{"migrate.yaml": strings.Replace(hookJob("migrate", 0, ""), "keelson.dev/hook: pre-apply", "team: data", 1)})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("the hook as an object: %v\n%v", err, l.Status().Errors)
	}
	var j batchv1.Job
	if err := st.Get(t.Context(), "shop", "migrate", &j); err != nil || isHook(&j) || j.Annotations["team"] != "data" {
		t.Errorf("the Job after the commit: hook %v, annotations %v, err %v", isHook(&j), j.Annotations, err)
	}
}
