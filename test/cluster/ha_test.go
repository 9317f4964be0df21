package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/test/cluster"
)

// appYAML is the application the HA tests keep running: a Deployment whose
// pods leave an unreachable node after 5 s, and a one-pod StatefulSet that
// prefers h3.
func appYAML(replicas int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: ha}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ha}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      containers:
      - name: web
        image: localhost/busybox:latest
        command: [sleep, "3600"]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: ha}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference:
              matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [h3]}]
      containers:
      - name: db
        image: localhost/busybox:latest
        command: [sleep, "3600"]
`, replicas)
}

// running lists the Running pods of namespace ha as "name@node", sorted.
func running(t *testing.T, c kubernetes.Interface) ([]string, error) {
	t.Helper()
	pods, err := c.CoreV1().Pods("ha").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p.Name+"@"+p.Spec.NodeName)
		}
	}
	sort.Strings(out)
	return out, nil
}

// waitRunning waits until namespace ha has web pods and one db pod
// Running, and returns them.
func waitRunning(t *testing.T, cl *cluster.Cluster, web int, within time.Duration) []string {
	t.Helper()
	var pods []string
	cluster.Eventually(t, within, fmt.Sprintf("%d web pods and db-0 Running", web), func() (string, bool) {
		c, _ := cl.AnyClient(t)
		var err error
		if pods, err = running(t, c); err != nil {
			return err.Error(), false
		}
		n := 0
		for _, p := range pods {
			if strings.HasPrefix(p, "web-") {
				n++
			}
		}
		return strings.Join(pods, " "), n == web && slices.ContainsFunc(pods, func(p string) bool { return strings.HasPrefix(p, "db-0@") })
	})
	return pods
}

// waitApplied waits until the Sync says rev is applied.
func waitApplied(t testing.TB, cl *cluster.Cluster, rev string, within time.Duration) {
	t.Helper()
	cluster.Eventually(t, within, "revision "+rev[:7]+" applied", func() (string, bool) {
		c, _ := cl.AnyClient(t)
		s, err := syncObject(t, c)
		if err != nil {
			return err.Error(), false
		}
		return s.Status.LastAppliedRevision, s.Status.LastAppliedRevision == rev
	})
}

// attempts lists the revisions of the Sync's attempts, newest first.
func attempts(t *testing.T, cl *cluster.Cluster) []string {
	t.Helper()
	c, _ := cl.AnyClient(t)
	s, err := syncObject(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range s.Status.History {
		out = append(out, a.Revision[:7]+":"+a.Result)
	}
	return out
}

// TestHA runs issue 20's reduced cluster: 3 hosts, an etcd member on each
// (TLS between members and to clients), servers on h1 and h2, agents on h2
// and h3, each with its containerd; then kills and cuts its parts one by
// one, checking the cluster carries on.
func TestHA(t *testing.T) {
	r := newRepo(t)
	r.commit(t, "deploy/app.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: ha}\n", "the namespace")
	cl := cluster.New(t, cluster.Config{
		Hosts: 3, Etcd: 3, Servers: 2, Agents: 2,
		Binary: binary, Repo: r.dir, Path: "deploy", Images: []string{busybox},
		ServerArgs: []string{"--node-monitor-grace-period", "20s"},
	})
	// The application comes once both nodes are Ready, so db-0 can go to
	// the node it prefers.
	first := r.commit(t, "deploy/app.yaml", appYAML(2), "web and db")
	waitApplied(t, cl, first, time.Minute)
	waitRunning(t, cl, 2, 90*time.Second)
	// Pods reach every server through the kubernetes service, leader or not.
	cluster.Eventually(t, 30*time.Second, "both servers endpoints of the kubernetes service", func() (string, bool) {
		c, _ := cl.AnyClient(t)
		ep, err := c.CoreV1().Endpoints("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		var ips []string
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				ips = append(ips, a.IP)
			}
		}
		return strings.Join(ips, ","), strings.Join(ips, ",") == cl.Hosts[0].IP+","+cl.Hosts[1].IP
	})

	t.Run("leader killed", func(t *testing.T) {
		var leader *cluster.Host
		cluster.Eventually(t, 30*time.Second, "a leader", func() (string, bool) {
			leader = cl.Leader(t)
			return fmt.Sprint(leader), leader != nil
		})
		before := attempts(t, cl)
		leader.Server.Kill(t)
		killed := time.Now()
		defer func() { // also when this part fails; see below
			leader.Server.Start(t)
			cl.WaitServer(t, leader)
		}()
		var next *cluster.Host
		cluster.Eventually(t, 30*time.Second, "another server leads", func() (string, bool) {
			next = cl.Leader(t)
			return fmt.Sprint(next), next != nil
		})
		t.Logf("%s leads %s after %s's server was killed (lease %s)", next.Name, time.Since(killed).Round(time.Millisecond), leader.Name, "5s")
		if next == leader {
			t.Fatalf("the killed server %s still leads", leader.Name)
		}
		// kubectl get lease -n kube-system keelson-controllers names it.
		cluster.Eventually(t, 30*time.Second, "the keelson-controllers Lease names "+next.Name, func() (string, bool) {
			c := cl.Client(t, next)
			l, err := c.CoordinationV1().Leases("kube-system").Get(t.Context(), "keelson-controllers", metav1.GetOptions{})
			if err != nil {
				return err.Error(), false
			}
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return holder, strings.HasSuffix(holder, fmt.Sprintf("@%s:%d", next.IP, cluster.APIPort))
		})
		// The new leader's controllers and sync carry on: a commit is
		// applied and acted on.
		rev := r.commit(t, "deploy/app.yaml", appYAML(3), "three web pods")
		waitApplied(t, cl, rev, time.Minute)
		waitRunning(t, cl, 3, 60*time.Second)
		after := attempts(t, cl)
		want := append([]string{rev[:7] + ":Succeeded"}, before...)
		if len(after) > 10 {
			after = after[:10]
		}
		if len(want) > 10 {
			want = want[:10]
		}
		if !slices.Equal(after, want) {
			t.Errorf("sync attempts %v, want %v: the change of leader repeated or lost one", after, want)
		}
	})

	t.Run("etcd member killed", func(t *testing.T) {
		victim := cl.Hosts[0]
		victim.Etcd.Kill(t)
		// The member comes back even when this part fails, so that the
		// parts after it meet a whole etcd, not a failure of this one.
		defer func() {
			victim.Etcd.Start(t)
			cl.WaitEtcd(t, victim)
		}()
		// Every server keeps answering reads; a read may be tried once
		// more, as clients do, but never fails twice in a row.
		for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for _, h := range cl.Servers() {
				c := cl.Client(t, h)
				if _, err := running(t, c); err != nil {
					if _, err2 := running(t, c); err2 != nil {
						t.Fatalf("reads through %s with %s's etcd member down: %v, then %v", h.Name, victim.Name, err, err2)
					}
				}
			}
		}
		// Two members of three are a quorum: commits are applied and acted on.
		rev := r.commit(t, "deploy/app.yaml", appYAML(2), "two web pods")
		waitApplied(t, cl, rev, time.Minute)
		waitRunning(t, cl, 2, 60*time.Second)
	})

	t.Run("agent host cut off", func(t *testing.T) {
		h2, h3 := cl.Host("h2"), cl.Host("h3")
		c, _ := cl.AnyClient(t)
		db, err := c.CoreV1().Pods("ha").Get(t.Context(), "db-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if db.Spec.NodeName != "h3" {
			t.Fatalf("db-0 on %q, want h3, which it prefers", db.Spec.NodeName)
		}
		// Never two copies of db-0 running, whatever the API says: watch
		// the hosts' containerds throughout.
		stop := make(chan struct{})
		copies := make(chan int, 1)
		go func() {
			most := 0
			defer func() { copies <- most }()
			for {
				n := 0
				for _, h := range []*cluster.Host{h2, h3} {
					ctrs, _ := h.RunningContainers(context.Background())
					for _, ctr := range ctrs {
						if strings.HasPrefix(ctr, "ha/db-0/") {
							n++
						}
					}
				}
				most = max(most, n)
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
		stopped := false
		defer func() {
			if !stopped {
				close(stop)
				<-copies
			}
		}()

		cl.Cut(t, h3)
		cluster.Eventually(t, 60*time.Second, "node h3 Unknown", func() (string, bool) {
			c, _ := cl.AnyClient(t)
			n, err := c.CoreV1().Nodes().Get(t.Context(), "h3", metav1.GetOptions{})
			if err != nil {
				return err.Error(), false
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					return string(cond.Status) + " " + cond.Reason, cond.Status == corev1.ConditionUnknown
				}
			}
			return "no Ready condition", false
		})
		// The web pods that were on h3 are replaced on h2; db-0 is not: its
		// copy on h3 may still run, cut off, so it waits, Terminating.
		cluster.Eventually(t, 60*time.Second, "both web pods Running on h2", func() (string, bool) {
			c, _ := cl.AnyClient(t)
			pods, err := running(t, c)
			if err != nil {
				return err.Error(), false
			}
			n := 0
			for _, p := range pods {
				if strings.HasPrefix(p, "web-") && strings.HasSuffix(p, "@h2") {
					n++
				}
			}
			return strings.Join(pods, " "), n == 2
		})
		c, _ = cl.AnyClient(t)
		db, err = c.CoreV1().Pods("ha").Get(t.Context(), "db-0", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("db-0 while h3 is cut off: %v", err)
		}
		if db.Spec.NodeName != "h3" || db.DeletionTimestamp == nil {
			t.Errorf("db-0 on %q, deleting %v: want the pod on h3 kept, Terminating, until h3 says it stopped", db.Spec.NodeName, db.DeletionTimestamp)
		}

		cl.Reconnect(t, h3)
		cl.WaitNodeReady(t, h3)
		// h3 stops what it ran of deleted pods; db-0 starts again once.
		cluster.Eventually(t, 90*time.Second, "h3 runs no deleted pod's container", func() (string, bool) {
			c, _ := cl.AnyClient(t)
			pods, err := c.CoreV1().Pods("ha").List(t.Context(), metav1.ListOptions{})
			if err != nil {
				return err.Error(), false
			}
			live := map[string]bool{}
			for _, p := range pods.Items {
				if p.Spec.NodeName == "h3" && p.DeletionTimestamp == nil {
					live[p.Name] = true
				}
			}
			ctrs, err := h3.RunningContainers(t.Context())
			if err != nil {
				return err.Error(), false
			}
			var stale []string
			for _, ctr := range ctrs {
				if pod := strings.Split(ctr, "/")[1]; !live[pod] {
					stale = append(stale, ctr)
				}
			}
			return strings.Join(stale, " "), len(stale) == 0
		})
		waitRunning(t, cl, 2, 90*time.Second)
		close(stop)
		stopped = true
		if n := <-copies; n != 1 {
			t.Errorf("at most %d copies of db-0 ran at once, want 1", n)
		}
	})

	t.Run("everything restarted", func(t *testing.T) {
		c, _ := cl.AnyClient(t)
		pods, err := c.CoreV1().Pods("ha").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids := map[string]string{}
		for _, p := range pods.Items {
			uids[p.Name] = string(p.UID)
		}
		before := attempts(t, cl)
		for _, h := range cl.Agents() {
			h.Agent.Stop(t)
		}
		for _, h := range cl.Servers() {
			h.Server.Stop(t)
		}
		for _, h := range cl.Hosts {
			if h.Etcd != nil {
				h.Etcd.Stop(t)
			}
		}
		for _, h := range cl.Hosts {
			if h.Etcd != nil {
				h.Etcd.Start(t)
			}
		}
		for _, h := range cl.Hosts {
			if h.Etcd != nil {
				cl.WaitEtcd(t, h)
			}
		}
		for _, h := range cl.Servers() {
			h.Server.Start(t)
		}
		for _, h := range cl.Servers() {
			cl.WaitServer(t, h)
		}
		for _, h := range cl.Agents() {
			h.Agent.Start(t)
		}
		for _, h := range cl.Agents() {
			cl.WaitNodeReady(t, h)
		}
		after := waitRunning(t, cl, 2, 60*time.Second)
		c, _ = cl.AnyClient(t)
		for _, p := range after {
			name := strings.Split(p, "@")[0]
			got, err := c.CoreV1().Pods("ha").Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if uids[name] != string(got.UID) {
				t.Errorf("pod %s is a new one after the restart (uid %s, was %s)", name, got.UID, uids[name])
			}
		}
		// The sync resumes where it stood: the applied revision is not
		// applied again.
		time.Sleep(3 * time.Second) // more than a sync interval
		if got := attempts(t, cl); !slices.Equal(got, before) {
			t.Errorf("sync attempts after the restart %v, want %v", got, before)
		}
	})
}
