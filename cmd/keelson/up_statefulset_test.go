package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/keelson/keelson/internal/servicenet"
)

// TestStatefulSetOnContainerd runs examples/statefulset with keelson up:
// kv-0, kv-1 and kv-2 start in order on containerd, each with its stable
// name, hostname and DNS name; a commit scaling to 1 removes kv-2 and
// then kv-1; scaling back to 3 makes kv-1 and kv-2 again under the same
// names; a template change rolls the pods from kv-2 down to kv-0.
func TestStatefulSetOnContainerd(t *testing.T) {
	u := newUpFixture(t)
	if err := os.CopyFS(filepath.Join(u.repo, "sts"), os.DirFS(filepath.Join(examplesDir, "statefulset"))); err != nil {
		t.Fatal(err)
	}
	gitRun(t, u.repo, "add", "sts")
	gitRun(t, u.repo, "commit", "-q", "-m", "statefulset")
	up := u.start(t, u.repo, "--path", "sts")
	log := watchPodLog(t, u, "statefulset")
	u.waitPods(t, up, 3)
	c := u.client(t)

	pods := stsPods(t, u)
	if got := podNamesOf(pods); !slices.Equal(got, []string{"kv-0", "kv-1", "kv-2"}) {
		t.Fatalf("pods %v, want kv-0 kv-1 kv-2", got)
	}
	log.expect(t, "order of start", 0, []string{"+", "ready"}, "+kv-0", "ready kv-0", "+kv-1", "ready kv-1", "+kv-2", "ready kv-2")
	cidr, _ := servicenet.ParseCIDR(testServiceCIDR)
	dns := net.JoinHostPort(cidr.DNSIP().String(), "53")
	for i, p := range pods {
		name := fmt.Sprintf("kv-%d", i)
		fqdn := name + ".kv.statefulset.svc.cluster.local"
		eventuallyOut(t, name+"'s log", func() (string, bool) {
			out, err := u.keelson("logs", "-n", "statefulset", name)
			return out, err == nil && strings.Contains(out, "kv: "+fqdn+" serving")
		})
		eventuallyOut(t, name+"'s page", func() (string, bool) {
			body, err := httpGet("http://" + p.Status.PodIP + ":8080/")
			return body, err == nil && strings.Contains(body, fmt.Sprintf("I am %s, ordinal %d", name, i))
		})
		eventuallyOut(t, fqdn+" in cluster DNS", func() (string, bool) {
			got, err := lookupA(dns, fqdn+".")
			return fmt.Sprint(got, err), err == nil && slices.Equal(got, []string{p.Status.PodIP})
		})
	}
	eventuallyOut(t, "keelson get statefulsets", func() (string, bool) {
		out, err := u.keelson("get", "statefulsets", "-n", "statefulset")
		return out, err == nil && strings.Contains(out, "kv     3/3")
	})
	kv0 := pods[0].UID

	manifest := filepath.Join(u.repo, "sts", "kv.yaml")
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	orig := string(b)
	if !strings.Contains(orig, "replicas: 3") {
		t.Fatal("kv.yaml: want replicas: 3 in it")
	}

	// Scale down to 1: kv-2 goes, and only once it is gone kv-1.
	mark := len(log.events())
	commit(t, u.repo, "sts/kv.yaml", strings.Replace(orig, "replicas: 3", "replicas: 1", 1), "kv: one replica")
	u.waitPods(t, up, 1)
	eventuallyOut(t, "kv-2 and kv-1 gone", func() (string, bool) {
		got := podNamesOf(stsPods(t, u))
		return fmt.Sprint(got), slices.Equal(got, []string{"kv-0"})
	})
	log.expect(t, "order of removal", mark, []string{"x"}, "x kv-2", "x kv-1")
	if p := stsPods(t, u)[0]; p.UID != kv0 {
		t.Errorf("kv-0 replaced by the scale-down")
	}

	// Back to 3: the same names, in order.
	mark = len(log.events())
	commit(t, u.repo, "sts/kv.yaml", orig, "kv: three replicas")
	u.waitPods(t, up, 3)
	log.expect(t, "order of scale-up", mark, []string{"+", "ready"}, "+kv-1", "ready kv-1", "+kv-2", "ready kv-2")

	// A template change rolls from kv-2 down to kv-0, each back and ready
	// before the next goes.
	mark = len(log.events())
	changed := strings.Replace(orig, "        - name: http\n          containerPort: 8080", "        - name: http\n          containerPort: 8080\n        env:\n        - name: VERSION\n          value: \"2\"", 1)
	if changed == orig {
		t.Fatal("kv.yaml: the ports block moved")
	}
	before, err := c.AppsV1().StatefulSets("statefulset").Get(t.Context(), "kv", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	commit(t, u.repo, "sts/kv.yaml", changed, "kv: version 2")
	eventuallyOut(t, "every pod at the new revision", func() (string, bool) {
		ss, err := c.AppsV1().StatefulSets("statefulset").Get(t.Context(), "kv", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		s := ss.Status
		return fmt.Sprintf("%+v", s), ss.Generation > before.Generation && s.ObservedGeneration == ss.Generation &&
			s.UpdatedReplicas == 3 && s.ReadyReplicas == 3 && s.CurrentRevision == s.UpdateRevision && s.UpdateRevision != before.Status.UpdateRevision
	})
	log.expect(t, "rolling update", mark, []string{"x", "+", "ready"},
		"x kv-2", "+kv-2", "ready kv-2", "x kv-1", "+kv-1", "ready kv-1", "x kv-0", "+kv-0", "ready kv-0")
	for _, p := range stsPods(t, u) {
		if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "2" {
			t.Errorf("pod %s: env %v, want VERSION=2", p.Name, env)
		}
	}
}

// stsPods are the example's pods, by name.
func stsPods(t *testing.T, u *upFixture) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range u.pods(t, "app.kubernetes.io/name=kv") {
		if p.Namespace == "statefulset" {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func podNamesOf(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// podWatchLog records, in order, what happens to a namespace's pods as the
// API reports it: "+kv-0" created, "ready kv-0", "x kv-0" gone.
type podWatchLog struct {
	mu sync.Mutex
	ev []string
}

// expect waits until the watch has reported as many of the events that
// start with prefixes, since mark, as want has (the watch may lag behind
// what the API lists), then checks they are want, in order. The next
// phase's mark is taken after it, so no event of this phase leaks there.
func (l *podWatchLog) expect(t *testing.T, what string, mark int, prefixes []string, want ...string) {
	t.Helper()
	var got []string
	eventuallyOut(t, what, func() (string, bool) {
		got = only(l.events()[mark:], prefixes...)
		return fmt.Sprint(got), len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func (l *podWatchLog) events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ev)
}

// watchPodLog watches a namespace's pods through the API from the
// beginning of the store's history (resourceVersion 1), so that no event
// before the API answered is missed; it retries until the API answers.
func watchPodLog(t *testing.T, u *upFixture, ns string) *podWatchLog {
	t.Helper()
	l := &podWatchLog{}
	var w watch.Interface
	eventuallyOut(t, "a watch of the pods", func() (string, bool) {
		if _, err := os.Stat(adminKubeconfig(u.data)); err != nil {
			return err.Error(), false
		}
		var err error
		// No resourceVersion: the watch starts with the pods there are (as
		// ADDED events) and goes on from there. A watch from revision 1 is
		// refused once the pods' watch cache started after the first write.
		w, err = u.client(t).CoreV1().Pods(ns).Watch(t.Context(), metav1.ListOptions{})
		return fmt.Sprint(err), err == nil
	})
	t.Cleanup(w.Stop)
	ready := map[types.UID]bool{}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			var add []string
			switch ev.Type {
			case watch.Added:
				add = append(add, "+"+p.Name)
			case watch.Deleted:
				add = append(add, "x "+p.Name)
			}
			if ev.Type != watch.Deleted && podReady(p) && !ready[p.UID] {
				ready[p.UID] = true
				add = append(add, "ready "+p.Name)
			}
			l.mu.Lock()
			l.ev = append(l.ev, add...)
			l.mu.Unlock()
		}
	}()
	return l
}

// only keeps the events that start with one of prefixes.
func only(events []string, prefixes ...string) []string {
	var out []string
	for _, e := range events {
		for _, p := range prefixes {
			if strings.HasPrefix(e, p) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}
