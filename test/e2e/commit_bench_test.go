package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/gitsync"
	"github.com/keelson/keelson/reconciler"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// webDeployment is a 3-replica Deployment of busybox sleepers.
func webDeployment(name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 3
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: %[2]s
        imagePullPolicy: IfNotPresent
        command: [sleep, "3600"]
`, name, ociarchive.BusyboxRef)
}

// BenchmarkCommitToRunning is the whole path a user waits on: from `git
// commit` of a 3-replica Deployment in a local repository to all three pods
// Running in the store — fsnotify, gitsync (validate, write), the Deployment
// and ReplicaSet controllers, the scheduler, the agent, CNI and containerd,
// with the image present. Each iteration commits a new Deployment; removing
// it and waiting for its containers to go is not timed.
func BenchmarkCommitToRunning(b *testing.B) {
	n := startNode(b, "node-1", "10.99.14.0/24")
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go reconciler.Run(ctx, n.store, quietLogger(), reconciler.Options{LeaderElection: reconciler.LeaderElection{Disabled: true}})
	sch, err := schema.Default()
	if err != nil {
		b.Fatal(err)
	}
	repo := b.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=Ops", "-c", "user.email=ops@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	git("commit", "-q", "--allow-empty", "-m", "start")
	loop, err := gitsync.New(gitsync.Config{Repo: repo, Ref: "main", Interval: time.Minute, Prune: true, AllowEmpty: true},
		n.store, sch, schema.NewCache(1000), quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	go loop.Run(ctx)
	running, stop := runningWatch(b, n.store)
	defer stop()
	pods, _ := store.ResourceByName("pods")

	var ds []time.Duration
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprintf("web-%d", i)
		file := filepath.Join(repo, "apps.yaml")
		if err := os.WriteFile(file, []byte(webDeployment(name)), 0o644); err != nil {
			b.Fatal(err)
		}
		git("add", "apps.yaml")
		t0 := time.Now()
		git("commit", "-q", "-m", "deploy "+name)
		up := 0
		timeout := time.After(2 * time.Minute)
		for up < 3 {
			select {
			case p := <-running:
				if strings.HasPrefix(p, name+"-") {
					up++
				}
			case <-timeout:
				b.Fatalf("%d of 3 pods of %s running after 2 minutes", up, name)
			}
		}
		ds = append(ds, time.Since(t0))

		b.StopTimer()
		git("rm", "-q", "apps.yaml")
		git("commit", "-q", "-m", "remove "+name)
		deadline := time.Now().Add(time.Minute)
		for {
			l, err := n.store.List(ctx, pods, store.ListOptions{Namespace: "default"})
			if err != nil {
				b.Fatal(err)
			}
			if len(l.Items) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d pods left a minute after their Deployment left Git", len(l.Items))
			}
			time.Sleep(20 * time.Millisecond)
		}
		waitNoContainers(b, n.rt)
		b.StartTimer()
	}
	percentiles(b, ds, "")
}
