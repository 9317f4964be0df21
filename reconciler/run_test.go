package reconciler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// sharedStore opens another store on the same etcd and prefix, as a second
// keelson server process would.
func sharedStore(t *testing.T, prefix string) (*store.Store, *clientv3.Client) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcdtest.Embedded(t), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(cli, prefix, testLog())
	t.Cleanup(func() { st.Close() })
	return st, cli
}

func TestLeaderFailover(t *testing.T) {
	prefix := fmt.Sprintf("/keelson-test/failover-%d/registry", time.Now().UnixNano())
	agent, _ := sharedStore(t, prefix)
	startFakeNode(t, agent, fakenode.Options{})
	env := &testEnv{t: t, st: agent}

	var mu sync.Mutex
	leading := map[string]bool{}
	var violations []string
	start := func(id string) (context.CancelFunc, *clientv3.Client) {
		st, cli := sharedStore(t, prefix)
		opts := testOptions()
		opts.LeaderElection = LeaderElection{TTL: 2 * time.Second, RetryPeriod: 50 * time.Millisecond, Identity: id}
		opts.OnLeading = func(on bool) {
			mu.Lock()
			defer mu.Unlock()
			leading[id] = on
			n := 0
			for _, l := range leading {
				if l {
					n++
				}
			}
			if n > 1 {
				violations = append(violations, fmt.Sprintf("%d leaders at once: %v", n, leading))
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, st, testLog(), opts)
		}()
		t.Cleanup(func() { cancel(); <-done })
		return cancel, cli
	}
	isLeading := func(id string) func() (bool, string) {
		return func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return leading[id], fmt.Sprint(leading)
		}
	}

	_, cliA := start("a")
	eventually(t, "a leads", isLeading("a"))
	start("b")
	rs := newRS("web", 2)
	if err := agent.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	rs = waitRS(t, env, "web", 2)

	cliA.Close() // a dies without resigning: b must wait for a's lease to expire
	eventually(t, "b takes over", isLeading("b"))
	rs.Spec.Replicas = ptr.To(int32(4))
	if err := env.update(rs); err != nil {
		t.Fatal(err)
	}
	waitRS(t, env, "web", 4)
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	if leading["a"] {
		t.Error("a still runs controllers after losing etcd")
	}
}

// TestRestartMidRollout stops the controllers in the middle of a rolling
// update and starts new ones: the rollout finishes, with no duplicate pods and
// the surge bound kept throughout.
func TestRestartMidRollout(t *testing.T) {
	st := etcdtest.NewStore(t)
	startFakeNode(t, st, fakenode.Options{})
	env := &testEnv{t: t, st: st}
	stop := startControllers(t, st, testOptions())
	d := newDeployment("web", 6, "web:1")
	one := ptr.To(intOrStr(1))
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: one, MaxUnavailable: one}
	if err := st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	obs := observePods(t, st, "default", func(pods map[string]*corev1.Pod) error {
		if len(pods) > 7 {
			return fmt.Errorf("%d pods, more than 6 + maxSurge 1", len(pods))
		}
		return nil
	})
	d.Spec.Template.Spec.Containers[0].Image = "web:2"
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rollout under way", func() (bool, string) {
		pods := listPods(t, st, "default", labels.Everything())
		n := 0
		for _, p := range pods {
			if p.Spec.Containers[0].Image == "web:2" {
				n++
			}
		}
		return n >= 2, describePods(pods)
	})
	stop()
	startControllers(t, st, testOptions())
	waitRolledOut(t, env, "web", "web:2")
	obs.report(t)
}
