package gitsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/reconciler"
	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// These tests run the real controllers (Jobs, Deployments, the Sync's
// health) on the store, with a simulated node in place of agents: a pod
// labelled exit-code ends with that code, a pod labelled ready: "no" runs
// and never becomes Ready, every other pod runs and is Ready.

func startCluster(t *testing.T, st *store.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	log := slog.New(slog.DiscardHandler)
	go func() {
		defer close(done)
		_ = reconciler.Run(ctx, st, log, reconciler.Options{LeaderElection: reconciler.LeaderElection{Disabled: true}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	err := fakenode.Start(ctx, st, fakenode.Options{
		Terminate: true, Log: log,
		Ready: func(p *corev1.Pod) bool { return p.Labels["ready"] != "no" },
		Exit: func(p *corev1.Pod) (int32, bool) {
			v, ok := p.Labels["exit-code"]
			if !ok {
				return 0, false
			}
			n, _ := strconv.Atoi(v)
			return int32(n), true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// created records the revision at which each object of some kinds was
// created, and the first revision at which it was Healthy by cond.
type created struct {
	mu    sync.Mutex
	first map[string]int64 // "kind ns/name" → creation revision
	ready map[string]int64
}

func recordCreations(t *testing.T, st *store.Store, plurals ...string) *created {
	t.Helper()
	c := &created{first: map[string]int64{}, ready: map[string]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, p := range plurals {
		w, err := st.Watch(ctx, store.MustResource(p), store.WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ev := range w.ResultChan() {
				o, ok := ev.Object.(store.Object)
				if !ok || ev.Type == watch.Deleted {
					continue
				}
				k := p + " " + o.GetNamespace() + "/" + o.GetName()
				rv, _ := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
				c.mu.Lock()
				if _, seen := c.first[k]; !seen {
					c.first[k] = rv
				}
				if _, seen := c.ready[k]; !seen && readyObject(o) {
					c.ready[k] = rv
				}
				c.mu.Unlock()
			}
		}()
	}
	return c
}

func readyObject(o store.Object) bool {
	switch o := o.(type) {
	case *batchv1.Job:
		done, ok, _ := hookDone(o)
		return done && ok
	case *appsv1.Deployment:
		return o.Status.AvailableReplicas > 0 && o.Status.ObservedGeneration == o.Generation
	}
	return true
}

// at is the revision recorded for k, waiting for the watch to deliver it
// (its events trail the writes a little); a hang guard fails the test.
func (c *created) at(t *testing.T, m map[string]int64, k string) int64 {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		v, ok := m[k]
		seen := fmt.Sprint(m)
		c.mu.Unlock()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was never seen; seen: %s", k, seen)
		}
	}
}

const (
	waveNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {keelson.dev/wave: "-1"}
`
	smokePod = `apiVersion: v1
kind: Pod
metadata:
  name: smoke
  namespace: shop
  annotations: {keelson.dev/hook: post-apply, keelson.dev/hook-delete-policy: hook-succeeded}
  labels: {exit-code: "0"}
spec:
  restartPolicy: Never
  containers:
  - {name: smoke, image: localhost/smoke:1}
`
)

// hookJob is a pre-apply Job hook whose pod exits with code.
func hookJob(name string, code int, extra string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
  namespace: shop
  annotations: {keelson.dev/hook: pre-apply%s}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {exit-code: "%d"}
    spec:
      restartPolicy: Never
      containers:
      - {name: migrate, image: localhost/migrate:1}
`, name, extra, code)
}

// webDeployment is shop/web with the image tag given; ready "no" keeps
// its pods from becoming Ready.
func webDeployment(tag, ready string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, ready: %q}
    spec:
      containers:
      - name: web
        image: localhost/web:%s
`, ready, tag)
}

func orderedLoop(t *testing.T, st *store.Store, repo string, cfg Config) *Loop {
	t.Helper()
	cfg.Repo, cfg.Prune = repo, true
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Minute // a hang guard: the controllers are quick
	}
	l, err := New(cfg, st, testSchema(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Syncer.pollEvery = 20 * time.Millisecond
	l.events = nil
	return l
}

func TestWavesAndHooksRunInOrder(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	seen := recordCreations(t, st, "namespaces", "jobs.batch", "deployments.apps", "pods")
	repo := newRepo(t)
	head := repo.commit(map[string]string{
		"ns.yaml": waveNamespace, "migrate.yaml": hookJob("migrate", 0, ""),
		"web.yaml": webDeployment("1", "yes"), "smoke.yaml": smokePod,
	})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop"})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("sync: %v\n%v", err, l.Status().Errors)
	}
	if s := l.Status(); s.Reason != ReasonSucceeded || s.LastApplied.ID != head {
		t.Fatalf("status %s %q, applied %s; want Succeeded at %s", s.Reason, s.Message, s.LastApplied.Short(), head[:7])
	}
	ns := seen.at(t, seen.first, "namespaces /shop")
	job := seen.at(t, seen.first, "jobs.batch shop/migrate")
	jobDone := seen.at(t, seen.ready, "jobs.batch shop/migrate")
	web := seen.at(t, seen.first, "deployments.apps shop/web")
	webReady := seen.at(t, seen.ready, "deployments.apps shop/web")
	smoke := seen.at(t, seen.first, "pods shop/smoke")
	order := []int64{ns, job, jobDone, web, webReady, smoke}
	if !slices.IsSorted(order) || len(slices.Compact(slices.Clone(order))) != len(order) {
		t.Errorf("store revisions: namespace %d, hook created %d, hook complete %d, deployment %d, deployment available %d, post-apply hook %d: want strictly increasing",
			ns, job, jobDone, web, webReady, smoke)
	}
	// The hooks are not objects of the revision: not in the inventory, and
	// the smoke pod, deleted once it succeeded (hook-succeeded), is not
	// put back.
	sync := &keelsonv1alpha1.Sync{}
	if err := st.Get(t.Context(), "", "shop", sync); err != nil {
		t.Fatal(err)
	}
	for _, ref := range sync.Status.Inventory {
		if ref.Name == "migrate" || ref.Name == "smoke" {
			t.Errorf("hook %s %s in the inventory", ref.Kind, ref.Name)
		}
	}
	if sync.Status.PendingRevision != "" {
		t.Errorf("pending revision %s left after the apply", sync.Status.PendingRevision)
	}
	var pod corev1.Pod
	if err := st.Get(t.Context(), "shop", "smoke", &pod); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("post-apply hook with hook-succeeded: get = %v, want it deleted", err)
	}
	// A resync that changes nothing runs no hook: the Job of the first run
	// is still the same object.
	var before, after batchv1.Job
	if err := st.Get(t.Context(), "shop", "migrate", &before); err != nil {
		t.Fatal(err)
	}
	l.Resync = time.Nanosecond
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.Get(t.Context(), "shop", "migrate", &after); err != nil {
		t.Fatal(err)
	}
	if before.UID != after.UID {
		t.Errorf("a resync with no change ran the pre-apply hook again")
	}
}

// tailLogs stands in for the API's log reader: the agents are simulated.
type tailLogs struct{}

func (tailLogs) TailLog(_ context.Context, ns, pod, container string, lines int) (string, error) {
	return fmt.Sprintf("ERROR: relation \"orders\" already exists\n(%s/%s %s, %d lines)\n", ns, pod, container, lines), nil
}

func TestFailingHookKeepsTheOldRevision(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	repo := newRepo(t)
	first := repo.commit(map[string]string{
		"ns.yaml": waveNamespace, "migrate.yaml": hookJob("migrate", 0, ""), "web.yaml": webDeployment("1", "yes"),
		"cleanup.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: cleanup
  namespace: shop
  annotations: {keelson.dev/hook: on-failure}
  labels: {exit-code: "0"}
spec:
  restartPolicy: Never
  containers:
  - {name: cleanup, image: localhost/cleanup:1}
`,
	})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop", Logs: tailLogs{}})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("first revision: %v", err)
	}
	second := repo.commit(map[string]string{"migrate.yaml": hookJob("migrate", 1, ""), "web.yaml": webDeployment("2", "yes")})
	err := l.SyncOnce(t.Context())
	if !errors.Is(err, ErrHook) {
		t.Fatalf("revision with a failing hook: err = %v, want ErrHook", err)
	}
	s := l.Status()
	if s.Reason != ReasonHookFailed || s.LastApplied.ID != first || s.LastAttempted.ID != second {
		t.Errorf("status %s, applied %s, attempted %s; want HookFailed, %s, %s", s.Reason, s.LastApplied.Short(), s.LastAttempted.Short(), first[:7], second[:7])
	}
	if !strings.Contains(s.Message, "pre-apply hook jobs.batch shop/migrate (migrate.yaml:1) failed") {
		t.Errorf("message %q does not name the hook", s.Message)
	}
	logs := strings.Join(s.Errors, "\n")
	if !strings.Contains(logs, `relation "orders" already exists`) || !strings.Contains(logs, "migrate-") {
		t.Errorf("errors do not hold the hook's log tail with its pod's name:\n%s", logs)
	}
	var web appsv1.Deployment
	if err := st.Get(t.Context(), "shop", "web", &web); err != nil {
		t.Fatal(err)
	}
	if img := web.Spec.Template.Spec.Containers[0].Image; img != "localhost/web:1" {
		t.Errorf("the Deployment runs %s after the hook failed; want the old revision's localhost/web:1", img)
	}
	var cleanup corev1.Pod
	if err := st.Get(t.Context(), "shop", "cleanup", &cleanup); err != nil {
		t.Errorf("the on-failure hook did not run: %v", err)
	}
	sync := &keelsonv1alpha1.Sync{}
	if err := st.Get(t.Context(), "", "shop", sync); err != nil {
		t.Fatal(err)
	}
	if sync.Status.PendingRevision != "" {
		t.Errorf("the failed revision stays pending (%s): the fix would wait behind it", sync.Status.PendingRevision)
	}
	// Not run again in a loop: the same revision is skipped.
	attempts := l.Status().Attempts
	if err := l.SyncOnce(t.Context()); err != nil || l.Status().Attempts != attempts {
		t.Errorf("the failed revision was tried again (err %v)", err)
	}
	// The fix lands: the hook runs again (before-hook-creation) and succeeds.
	third := repo.commit(map[string]string{"migrate.yaml": hookJob("migrate", 0, "")})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("fixed revision: %v\n%v", err, l.Status().Errors)
	}
	if err := st.Get(t.Context(), "shop", "web", &web); err != nil {
		t.Fatal(err)
	}
	if img := web.Spec.Template.Spec.Containers[0].Image; img != "localhost/web:2" || l.Status().LastApplied.ID != third {
		t.Errorf("after the fix: image %s, applied %s; want localhost/web:2 at %s", img, l.Status().LastApplied.Short(), third[:7])
	}
}

func TestRollbackToTheLastHealthyRevision(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	repo := newRepo(t)
	good := repo.commit(map[string]string{"ns.yaml": waveNamespace, "web.yaml": webDeployment("1", "yes")})
	l := orderedLoop(t, st, repo.dir, Config{Name: "shop", Wait: true, Rollback: true, Timeout: 2 * time.Second})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("good revision: %v", err)
	}
	if l.Status().LastHealthy.ID != good {
		t.Fatalf("last healthy %s, want %s", l.Status().LastHealthy.Short(), good[:7])
	}
	bad := repo.commit(map[string]string{"web.yaml": webDeployment("2", "no")})
	if err := l.SyncOnce(t.Context()); !errors.Is(err, ErrHealth) {
		t.Fatalf("unhealthy revision: err = %v, want ErrHealth", err)
	}
	s := l.Status()
	if s.Reason != ReasonHealthCheckFailed || s.Failed.ID != bad || s.LastApplied.ID != good || !strings.Contains(s.Message, "rolled back to "+good[:7]) {
		t.Errorf("status %s %q, failed %s, applied %s; want HealthCheckFailed, failed %s, rolled back to %s",
			s.Reason, s.Message, s.Failed.Short(), s.LastApplied.Short(), bad[:7], good[:7])
	}
	var web appsv1.Deployment
	if err := st.Get(t.Context(), "shop", "web", &web); err != nil {
		t.Fatal(err)
	}
	if img := web.Spec.Template.Spec.Containers[0].Image; img != "localhost/web:1" || web.Annotations[AnnotationRevision] != good {
		t.Errorf("after the rollback the Deployment runs %s of revision %s; want localhost/web:1 of %s", img, web.Annotations[AnnotationRevision], good[:7])
	}
	sync := &keelsonv1alpha1.Sync{}
	if err := st.Get(t.Context(), "", "shop", sync); err != nil {
		t.Fatal(err)
	}
	if sync.Status.FailedRevision != bad || sync.Status.LastAppliedRevision != good || sync.Status.LastHealthyRevision != good {
		t.Errorf("Sync status: failed %q, applied %q, healthy %q; want %s, %s, %s", sync.Status.FailedRevision,
			sync.Status.LastAppliedRevision, sync.Status.LastHealthyRevision, bad[:7], good[:7], good[:7])
	}
	// The failed revision is not tried again until the source moves.
	attempts := l.Status().Attempts
	if err := l.SyncOnce(t.Context()); err != nil || l.Status().Attempts != attempts {
		t.Errorf("the rolled-back revision was tried again (err %v)", err)
	}
	// A good revision after it clears the mark.
	fixed := repo.commit(map[string]string{"web.yaml": webDeployment("3", "yes")})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatalf("fixed revision: %v", err)
	}
	if err := st.Get(t.Context(), "", "shop", sync); err != nil {
		t.Fatal(err)
	}
	if s := l.Status(); s.Failed.ID != "" || sync.Status.FailedRevision != "" || s.LastHealthy.ID != fixed {
		t.Errorf("after a good revision: failed %q (Sync %q), last healthy %s; want none, %s", s.Failed.ID, sync.Status.FailedRevision, s.LastHealthy.Short(), fixed[:7])
	}
}

func TestDependsOnChain(t *testing.T) {
	st := etcdtest.NewStore(t)
	startCluster(t, st)
	seen := recordCreations(t, st, "configmaps", "deployments.apps")
	repos := map[string]*testRepo{}
	loops := map[string]*Loop{}
	for name, deps := range map[string][]string{"infra": nil, "db": {"infra"}, "app": {"db"}} {
		repos[name] = newRepo(t)
		files := map[string]string{"cm.yaml": configMap(name, "1")}
		if name == "db" {
			files["db.yaml"] = strings.ReplaceAll(webDeployment("1", "yes"), "shop", "default")
		}
		repos[name].commit(files)
		loops[name] = orderedLoop(t, st, repos[name].dir, Config{Name: name, DependsOn: deps})
	}
	// The last of the chain waits while nothing else is there.
	if err := loops["app"].SyncOnce(t.Context()); !errors.Is(err, ErrDependency) {
		t.Fatalf("app before db: err = %v, want ErrDependency", err)
	}
	if s := loops["app"].Status(); s.Reason != ReasonDependencyNotReady || !strings.Contains(s.Message, "source db has not synced yet") {
		t.Errorf("app: %s %q", s.Reason, s.Message)
	}
	// Run all three as a server does; they land in the chain's order.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range loops {
		l.Interval = 50 * time.Millisecond
		wg.Go(func() { _ = l.Run(ctx) })
	}
	eventually(t, "every source applied", func() bool {
		for _, l := range loops {
			if l.Status().Reason != ReasonSucceeded {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	infra := seen.at(t, seen.first, "configmaps default/infra")
	dbReady := seen.at(t, seen.ready, "deployments.apps default/web")
	app := seen.at(t, seen.first, "configmaps default/app")
	if !(infra < dbReady && dbReady < app) {
		t.Errorf("revisions: infra %d, db Healthy %d, app %d: want app after db Healthy after infra", infra, dbReady, app)
	}
}

// eventually polls cond, failing after a generous bound (a hang guard, not
// a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}
