package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

// versionedWeb is a 3-replica Deployment whose pods print their VERSION and
// serve; a change of version is a rolling update (default strategy: one
// extra pod, none unavailable).
func versionedWeb(version string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %s
        imagePullPolicy: IfNotPresent
        env: [{name: VERSION, value: %q}]
        command: [sh, -c, 'echo "web version $VERSION"; exec httpd -f -p 8080']
`, ociarchive.BusyboxRef, version)
}

// webState is what the API shows of the web pods at one moment.
type webState struct {
	ready    int               // Ready and not being deleted
	versions map[string]string // pod name → VERSION of the running ones
	uids     []string
	pods     []string // name phase node reason, for failure messages
}

func (u *upFixture) webState(t testing.TB) webState {
	s, err := u.tryWebState(t)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (u *upFixture) tryWebState(t testing.TB) (webState, error) {
	s := webState{versions: map[string]string{}}
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(u.data))
	if err != nil {
		return s, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return s, err
	}
	list, err := c.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return s, err
	}
	for _, p := range list.Items {
		s.uids = append(s.uids, string(p.UID))
		why := ""
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				why += fmt.Sprintf(" %s=%s(%s)", c.Type, c.Status, c.Message)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				why += " waiting:" + w.Reason + ":" + w.Message
			}
		}
		s.pods = append(s.pods, fmt.Sprintf("%s %s node=%q deleting=%v%s", p.Name, p.Status.Phase, p.Spec.NodeName, p.DeletionTimestamp != nil, why))
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				s.ready++
			}
		}
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == "VERSION" {
				s.versions[p.Name] = e.Value
			}
		}
	}
	slices.Sort(s.uids)
	return s, nil
}

// waitVersion waits until exactly three web pods run, Ready, all at version.
func (u *upFixture) waitVersion(t testing.TB, p *proc, version string) webState {
	t.Helper()
	var s webState
	eventuallyOut(t, "3 web pods Ready at version "+version, func() (string, bool) {
		select {
		case <-p.done:
			t.Fatalf("keelson up exited:\n%s", p.out)
		default:
		}
		var err error
		if s, err = u.tryWebState(t); err != nil {
			return err.Error(), false
		}
		ok := s.ready == 3 && len(s.versions) == 3 && len(s.uids) == 3
		for _, v := range s.versions {
			ok = ok && v == version
		}
		return fmt.Sprintf("%+v", s), ok
	})
	return s
}

// watchAvailability polls the web pods until stop is closed and returns the
// fewest Ready ones it saw.
func (u *upFixture) watchAvailability(t testing.TB, stop <-chan struct{}) func() int {
	c := u.client(t)
	var mu sync.Mutex
	fewest := 3
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			list, err := c.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				continue // the test's own checks see a broken API
			}
			ready := 0
			for _, p := range list.Items {
				for _, cond := range p.Status.Conditions {
					if p.DeletionTimestamp == nil && cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			mu.Lock()
			fewest = min(fewest, ready)
			mu.Unlock()
		}
	}()
	return func() int {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return fewest
	}
}

// TestGitOpsFlow is the whole flow as a user lives it, on `keelson up` with
// its own containerd: a commit brings pods up; a changed env rolls them with
// no loss of availability; a revert goes back to the old ReplicaSet; a broken
// commit changes nothing and says why in the Sync status; SIGKILL in the
// middle of a rollout and a restart converge with one container per pod;
// client-go reads pods, logs and the Sync status; removing the file prunes
// everything, containers included.
func TestGitOpsFlow(t *testing.T) {
	u := newUpFixture(t)
	// A second object, so that removing web is a prune, not the empty
	// revision keelson refuses.
	commit(t, u.repo, "deploy/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: demo}\n", "settings")
	commit(t, u.repo, "deploy/web.yaml", versionedWeb("1"), "web, version 1")
	up := u.start(t, u.repo, "--path", "deploy")
	v1 := u.waitVersion(t, up, "1")
	if n := len(u.containers(t)); n != 3 {
		t.Fatalf("%d containers for 3 pods", n)
	}

	// A rolling update that keeps availability.
	stop := make(chan struct{})
	fewest := u.watchAvailability(t, stop)
	commit(t, u.repo, "deploy/web.yaml", versionedWeb("2"), "web, version 2")
	v2 := u.waitVersion(t, up, "2")
	close(stop)
	if f := fewest(); f < 3 {
		t.Errorf("during the rolling update only %d web pods were Ready (maxUnavailable 0)", f)
	}
	if slices.Equal(v1.uids, v2.uids) {
		t.Fatal("version 2 runs in the pods of version 1")
	}
	rsOf := func() map[string]int32 {
		out := map[string]int32{}
		list, err := u.client(t).AppsV1().ReplicaSets("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range list.Items {
			out[rs.Name] = *rs.Spec.Replicas
		}
		return out
	}
	rsAfterV2 := rsOf()
	if len(rsAfterV2) != 2 {
		t.Fatalf("replica sets after one update: %v", rsAfterV2)
	}

	// git revert: back to version 1's ReplicaSet, scaled up again.
	gitRun(t, u.repo, "revert", "--no-edit", "HEAD")
	u.waitVersion(t, up, "1")
	if rs := rsOf(); len(rs) != 2 {
		t.Errorf("the revert made a new ReplicaSet instead of reusing version 1's: %v (before %v)", rs, rsAfterV2)
	}

	// A broken commit: nothing changes, the Sync status says where.
	before := u.webState(t)
	commit(t, u.repo, "deploy/web.yaml", strings.Replace(versionedWeb("3"), "replicas: 3", "replicas: three", 1), "break it")
	eventuallyOut(t, "the broken commit in keelson status", func() (string, bool) {
		out, err := u.keelson("status")
		return out, err == nil && strings.Contains(out, "ValidationFailed") && strings.Contains(out, "deploy/web.yaml:5")
	})
	if after := u.webState(t); !slices.Equal(after.uids, before.uids) {
		t.Errorf("a broken commit changed the pods: %v → %v", before.uids, after.uids)
	}

	// client-go reads pods, logs and the Sync status.
	pods := u.pods(t, "app=web")
	logs, err := u.client(t).CoreV1().Pods("default").GetLogs(pods[0].Name, &corev1.PodLogOptions{}).Stream(t.Context())
	if err != nil {
		t.Fatalf("logs through client-go: %v", err)
	}
	b, _ := io.ReadAll(logs)
	logs.Close()
	if !strings.Contains(string(b), "web version 1") {
		t.Errorf("logs of %s: %q", pods[0].Name, b)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(u.data))
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sync, err := dyn.Resource(schema.GroupVersionResource{Group: "keelson.dev", Version: "v1alpha1", Resource: "syncs"}).Get(t.Context(), "default", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Sync through client-go: %v", err)
	}
	if errs, _, _ := unstructured.NestedStringSlice(sync.Object, "status", "errors"); len(errs) == 0 || !strings.HasPrefix(errs[0], "deploy/web.yaml:5") {
		t.Errorf("Sync status errors: %q", errs)
	}

	// SIGKILL in the middle of a rollout, then a restart: it converges, one
	// container per pod.
	commit(t, u.repo, "deploy/web.yaml", versionedWeb("4"), "web, version 4")
	eventuallyOut(t, "the version 4 rollout under way", func() (string, bool) {
		rs := rsOf()
		return fmt.Sprint(rs), len(rs) == 3
	})
	up.cmd.Process.Signal(syscall.SIGKILL)
	<-up.done
	up = u.start(t, u.repo, "--path", "deploy")
	u.waitVersion(t, up, "4")
	eventuallyOut(t, "one container per pod after the restart", func() (string, bool) {
		n := len(u.containers(t))
		return fmt.Sprintf("%d containers", n), n == 3
	})

	// The file leaves Git: web is pruned, containers too.
	gitRun(t, u.repo, "rm", "-q", "deploy/web.yaml")
	gitRun(t, u.repo, "commit", "-q", "-m", "remove web")
	eventuallyOut(t, "web pruned, containers gone", func() (string, bool) {
		rs, n := rsOf(), len(u.containers(t))
		_, err := u.client(t).AppsV1().Deployments("default").Get(t.Context(), "web", metav1.GetOptions{})
		return fmt.Sprintf("deployment: %v, replica sets %v, %d containers", err, rs, n), err != nil && len(rs) == 0 && n == 0
	})
	if code := u.interrupt(t, up); code != 0 {
		t.Fatalf("keelson up exited %d after SIGINT:\n%s", code, up.out)
	}
}
