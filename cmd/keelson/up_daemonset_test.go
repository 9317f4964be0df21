package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
)

// TestDaemonSetAcrossNodes runs examples/daemonset with keelson up on the
// real node, then three simulated nodes join the cluster (Node objects and
// fake agents that mark their pods running): the DaemonSet has one pod on
// each of the four, the real one on containerd logging its node's name.
func TestDaemonSetAcrossNodes(t *testing.T) {
	u := newUpFixture(t)
	if err := os.CopyFS(filepath.Join(u.repo, "daemonset"), os.DirFS(filepath.Join(examplesDir, "daemonset"))); err != nil {
		t.Fatal(err)
	}
	gitRun(t, u.repo, "add", "daemonset")
	gitRun(t, u.repo, "commit", "-q", "-m", "daemonset")
	up := u.start(t, u.repo, "--path", "daemonset")
	u.waitPods(t, up, 1)

	etcd := u.args[slices.Index(u.args, "--etcd-listen-client")+1]
	withStore(t, etcd, func(st *store.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		for i := range 3 {
			name := fmt.Sprintf("sim-%d", i)
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
			if err := st.Create(ctx, n); err != nil {
				t.Fatal(err)
			}
			if err := fakenode.Start(ctx, st, fakenode.Options{Node: name}); err != nil {
				t.Fatal(err)
			}
		}
		eventuallyOut(t, "a node-logger pod running on each of the four nodes", func() (string, bool) {
			var where []string
			for _, p := range u.pods(t, "app.kubernetes.io/name=node-logger") {
				if p.Status.Phase == corev1.PodRunning && podReady(&p) {
					where = append(where, p.Spec.NodeName)
				}
			}
			sort.Strings(where)
			ds, err := u.client(t).AppsV1().DaemonSets("daemonset").Get(t.Context(), "node-logger", metav1.GetOptions{})
			if err != nil {
				return err.Error(), false
			}
			s := ds.Status
			return fmt.Sprintf("%v %+v", where, s), strings.Join(where, ",") == "local,sim-0,sim-1,sim-2" &&
				s.DesiredNumberScheduled == 4 && s.NumberReady == 4 && s.UpdatedNumberScheduled == 4
		})
	})
	var real string
	for _, p := range u.pods(t, "app.kubernetes.io/name=node-logger") {
		if p.Spec.NodeName == "local" {
			real = p.Name
		}
	}
	eventuallyOut(t, "the real node's pod logging its node", func() (string, bool) {
		out, err := u.keelson("logs", "-n", "daemonset", real)
		return out, err == nil && strings.Contains(out, "watching node local")
	})
}
