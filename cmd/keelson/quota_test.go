package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keelson/keelson/store/etcdtest"
)

// teamApp is a namespace with a quota of three pods and one CPU, a
// LimitRange that gives containers 200m when they ask for nothing, and a
// Deployment of replicas pods that asks for nothing.
func teamApp(replicas int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: team}
spec:
  hard: {pods: "3", requests.cpu: "1"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: defaults, namespace: team}
spec:
  limits:
  - type: Container
    defaultRequest: {cpu: 200m}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: localhost/web:1}]
`, replicas)
}

// TestServerHoldsQuotasAndLimits: keelson server holds every write to a
// namespace's LimitRange and ResourceQuota: the Deployment's pods, made by
// its controllers, get the LimitRange's default request; the quota's
// status, read through the API as kubectl reads it, counts them; and a
// commit that would break the quota is refused, with the numbers, in the
// Sync status keelson status shows.
func TestServerHoldsQuotasAndLimits(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gitRun(t, "", "init", "-q", "-b", "main", repo)
	commit(t, repo, "deploy/app.yaml", teamApp(2), "two web pods")
	data, api := filepath.Join(dir, "server"), freeAddr(t)
	p := start(t, "server", "--data-dir", data, "--listen", api, "--repo", repo, "--path", "deploy", "--sync-interval", "1s",
		"--etcd-listen-client", etcdtest.FreeURL(t), "--etcd-listen-peer", etcdtest.FreeURL(t))
	defer p.stop(t)
	readyz(t, p, api, 200)
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig(data))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventuallyOut(t, "two pods with the LimitRange's request, counted by the quota", func() (string, bool) {
		pods, err := cs.CoreV1().Pods("team").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return err.Error(), false
		}
		q, err := cs.CoreV1().ResourceQuotas("team").Get(t.Context(), "compute", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		var requests []string
		for _, pod := range pods.Items {
			requests = append(requests, pod.Spec.Containers[0].Resources.Requests.Cpu().String())
		}
		used := q.Status.Used[corev1.ResourceRequestsCPU]
		count := q.Status.Used[corev1.ResourcePods]
		return fmt.Sprintf("requests %v, quota used %v", requests, q.Status.Used),
			len(requests) == 2 && requests[0] == "200m" && requests[1] == "200m" && used.String() == "400m" && count.String() == "2"
	})
	commit(t, repo, "deploy/app.yaml", teamApp(4), "four web pods")
	const want = "breaks ResourceQuota team/compute: pods would be 4, over its hard limit of 3 (2 now)"
	eventuallyOut(t, "the Sync refusing the commit", func() (string, bool) {
		b, err := exec.Command(binary, "status", "--data-dir", data).CombinedOutput()
		return string(b), err == nil && strings.Contains(strings.Join(strings.Fields(string(b)), " "), want)
	})
	pods, err := cs.CoreV1().Pods("team").List(t.Context(), metav1.ListOptions{})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("pods after the refused commit: %d, %v", len(pods.Items), err)
	}
}
