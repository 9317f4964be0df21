package apiserver_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/apiserver"
)

// next returns the next event, failing the test if the watch ends or stays
// silent for long (a generous bound against hanging, not a timing check).
func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

func expect(t *testing.T, w watch.Interface, typ watch.EventType, name string) *corev1.Pod {
	t.Helper()
	for {
		ev := next(t, w)
		if ev.Type == watch.Bookmark {
			continue
		}
		p, ok := ev.Object.(*corev1.Pod)
		if ev.Type != typ || !ok || p.Name != name {
			t.Fatalf("got %s %#v, want %s %s", ev.Type, ev.Object, typ, name)
		}
		return p
	}
}

func TestWatchResumesFromResourceVersion(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	cs := ts.client(t, "admin-token")
	pods := cs.CoreV1().Pods("default")
	if err := ts.st.Create(ctx, pod("default", "before", nil, "", "")); err != nil {
		t.Fatal(err)
	}
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	a := pod("default", "a", map[string]string{"app": "web"}, "", "")
	if err := ts.st.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	afterCreate := a.ResourceVersion
	a.Labels["app"] = "db"
	if err := ts.st.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.Delete(ctx, podsRes(t), "default", "a", nil); err != nil {
		t.Fatal(err)
	}
	expect(t, w, watch.Added, "a")
	if p := expect(t, w, watch.Modified, "a"); p.Labels["app"] != "db" {
		t.Fatalf("modified pod has app=%s", p.Labels["app"])
	}
	expect(t, w, watch.Deleted, "a")
	w.Stop()

	// Reconnect from the middle: only what came after.
	w, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: afterCreate})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expect(t, w, watch.Modified, "a")
	expect(t, w, watch.Deleted, "a")

	// A label-selected watch sees an object leave its selection as DELETED.
	sel, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Stop()
	expect(t, sel, watch.Added, "a")
	expect(t, sel, watch.Deleted, "a")
}

func TestWatchFromCompactedVersionIsGone(t *testing.T) {
	ts := newTestServer(t, func(c *apiserver.Config) { c.WatchCache.History = 8 })
	ctx := t.Context()
	cs := ts.client(t, "admin-token")
	pods := cs.CoreV1().Pods("default")
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := ts.st.Create(ctx, pod("default", fmt.Sprintf("p%d", i), nil, "", "")); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the cache has seen the writes, through a consistent list.
	if _, err := pods.List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from a version outside the window: %v, want 410 Gone", err)
	}
}

func TestInformerFollowsChanges(t *testing.T) {
	for _, watchList := range []bool{false, true} {
		t.Run(fmt.Sprintf("watchlist=%v", watchList), func(t *testing.T) {
			ts := newTestServer(t)
			ctx := t.Context()
			if err := ts.st.Create(ctx, pod("default", "old", nil, "", "")); err != nil {
				t.Fatal(err)
			}
			cs := ts.client(t, "admin-token")
			factory := informers.NewSharedInformerFactory(cs, 0)
			inf := factory.Core().V1().Pods().Informer()
			if !watchList {
				// Without watch-list, the reflector lists and then watches.
				inf = factory.InformerFor(&corev1.Pod{}, func(c kubernetesInterface, _ time.Duration) cache.SharedIndexInformer {
					lw := cache.NewListWatchFromClient(c.CoreV1().RESTClient(), "pods", "", fieldsEverything())
					return cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, unsupported{}), &corev1.Pod{}, 0, cache.Indexers{})
				})
			}
			events := make(chan string, 100)
			inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(o any) { events <- "add " + o.(*corev1.Pod).Name },
				UpdateFunc: func(_, o any) { events <- "update " + o.(*corev1.Pod).Name },
				DeleteFunc: func(o any) {
					if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
						o = d.Obj
					}
					events <- "delete " + o.(*corev1.Pod).Name
				},
			})
			ictx, cancel := context.WithCancel(ctx)
			factory.Start(ictx.Done())
			defer func() {
				cancel()
				factory.Shutdown()
			}()
			if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				t.Fatal("informer did not sync")
			}
			wantEvent(t, events, "add old")
			p := pod("default", "new", nil, "", "")
			if err := ts.st.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
			wantEvent(t, events, "add new")
			p.Status.Phase = corev1.PodRunning
			if err := ts.st.Update(ctx, p); err != nil {
				t.Fatal(err)
			}
			wantEvent(t, events, "update new")
			if err := ts.st.Delete(ctx, podsRes(t), "default", "old", nil); err != nil {
				t.Fatal(err)
			}
			wantEvent(t, events, "delete old")
			if got := len(inf.GetStore().List()); got != 1 {
				t.Fatalf("informer holds %d pods, want 1", got)
			}
		})
	}
}

func wantEvent(t *testing.T, events chan string, want string) {
	t.Helper()
	select {
	case got := <-events:
		if got != want {
			t.Fatalf("informer event %q, want %q", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no informer event, want %q", want)
	}
}

func TestWatchListEndsInitialEventsWithBookmark(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	for i := range 3 {
		if err := ts.st.Create(ctx, pod("default", fmt.Sprintf("p%d", i), nil, "", "")); err != nil {
			t.Fatal(err)
		}
	}
	cs := ts.client(t, "admin-token")
	yes := true
	w, err := cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{
		SendInitialEvents: &yes, AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range 3 {
		expect(t, w, watch.Added, fmt.Sprintf("p%d", i))
	}
	ev := next(t, w)
	p, _ := ev.Object.(*corev1.Pod)
	if ev.Type != watch.Bookmark || p == nil || p.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("after the initial events got %s %#v, want the initial-events-end BOOKMARK", ev.Type, ev.Object)
	}
	if rv, _ := strconv.ParseInt(p.ResourceVersion, 10, 64); rv == 0 {
		t.Fatalf("bookmark without a resourceVersion")
	}
}

func TestWatchClientGoingAwayLeaksNothing(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	cs := ts.client(t, "admin-token")
	pods := cs.CoreV1().Pods("default")
	// Warm up: start the cache and the client's connections.
	if _, err := pods.List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	ignore := goleak.IgnoreCurrent()
	var ws []watch.Interface
	for range 20 {
		w, err := pods.Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if err := ts.st.Create(ctx, pod("default", "x", nil, "", "")); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		expect(t, w, watch.Added, "x")
		w.Stop()
	}
	goleak.VerifyNone(t, ignore,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"))
	if n := ts.srv.Watchers("pods"); n != 0 {
		t.Fatalf("%d watchers still registered after every client left", n)
	}
}

func TestWatchSendsBookmarksWhenAllowed(t *testing.T) {
	ts := newTestServer(t, func(c *apiserver.Config) { c.WatchCache.BookmarkInterval = 20 * time.Millisecond })
	ctx := t.Context()
	pods := ts.client(t, "admin-token").CoreV1().Pods("default")
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	p := pod("default", "a", nil, "", "")
	if err := ts.st.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Added {
		t.Fatalf("got %s, want ADDED", ev.Type)
	}
	ev := next(t, w)
	bm, ok := ev.Object.(*corev1.Pod)
	if ev.Type != watch.Bookmark || !ok || bm.ResourceVersion != p.ResourceVersion {
		t.Fatalf("got %s %#v, want a BOOKMARK at %s", ev.Type, ev.Object, p.ResourceVersion)
	}
}

func TestWatchEndsAtItsTimeout(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	one := int64(1)
	w, err := ts.client(t, "admin-token").CoreV1().Pods("").Watch(ctx, metav1.ListOptions{TimeoutSeconds: &one})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				if n := ts.srv.Watchers("pods"); n != 0 {
					t.Fatalf("%d watchers left after the timeout", n)
				}
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the watch outlived timeoutSeconds=1 by far")
		}
	}
}

// A list read from etcd carries etcd's current revision, which may be newer
// than anything of its resource; a watch from it must start at once.
func TestWatchFromRevisionOfAnotherResource(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	cs := ts.client(t, "admin-token")
	if _, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c"}}); err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch from %s: %v", list.ResourceVersion, err)
	}
	defer w.Stop()
	if _, err := cs.CoreV1().Pods("default").Get(ctx, "x", metav1.GetOptions{ResourceVersion: list.ResourceVersion}); !apierrors.IsNotFound(err) {
		t.Fatalf("get at %s: %v, want 404", list.ResourceVersion, err)
	}
}
