package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) != "" {
		runTestServer()
	}
	etcdtest.Main(m)
}

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// testOptions are small timings so scenarios finish quickly. The fake node
// binds pods itself, so the scheduler and the node lifecycle controller
// (which would find no registered node) are off; their own tests turn them on.
func testOptions() Options {
	return Options{
		Queue:         QueueOptions{Workers: 2, BaseDelay: 5 * time.Millisecond, MaxDelay: 200 * time.Millisecond},
		Resync:        0,
		Scheduler:     SchedulerOptions{Disabled: true},
		NodeLifecycle: NodeLifecycleOptions{Disabled: true},
	}
}

// startControllers runs every controller on st (no leader election) until the
// test ends or stop is called.
func startControllers(t *testing.T, st *store.Store, opts Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	opts.LeaderElection.Disabled = true
	go func() {
		defer close(done)
		Run(ctx, st, testLog(), opts)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func startFakeNode(t *testing.T, st *store.Store, opts fakenode.Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Log = testLog()
	if err := fakenode.Start(ctx, st, opts); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds, failing the test after a generous
// bound (a hang guard, not a timing assertion).
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: never happened; last state: %s", what, last)
}

func listPods(t *testing.T, st *store.Store, ns string, sel labels.Selector) []*corev1.Pod {
	t.Helper()
	l, err := st.List(t.Context(), store.MustResource("pods"), store.ListOptions{Namespace: ns, Selector: sel})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*corev1.Pod, len(l.Items))
	for i, o := range l.Items {
		out[i] = o.(*corev1.Pod)
	}
	return out
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}},
	}
}

func ownedBy(pods []*corev1.Pod, uid string) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && string(ref.UID) == uid {
			out = append(out, p)
		}
	}
	return out
}

func describePods(pods []*corev1.Pod) string {
	s := fmt.Sprintf("%d pods:", len(pods))
	for _, p := range pods {
		s += fmt.Sprintf(" %s(ready=%v)", p.Name, podReady(p))
	}
	return s
}
