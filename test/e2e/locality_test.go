package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
	"github.com/keelson/keelson/reconciler"
)

// TestImageLocality: node-1, a real agent, holds a 250 MiB image, which
// its status lists; node-2 has twice the CPU and nothing. A pod of the
// large image goes to node-1, as the scheduler's image locality scores it
// above node-2's spare CPU; a pod of an image neither holds then goes to
// node-2, the emptier node.
func TestImageLocality(t *testing.T) {
	n := startNode(t, "node-1", "10.99.30.0/24")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const big = "localhost/big:1"
	importBigImage(t, n, big, 250<<20)
	var node1 corev1.Node
	eventually(t, "node-1 lists the large image", func() string {
		if err := n.store.Get(ctx, "", "node-1", &node1); err != nil {
			return err.Error()
		}
		for _, img := range node1.Status.Images {
			if slices.Contains(img.Names, big) {
				return ""
			}
		}
		return fmt.Sprintf("images %v", node1.Status.Images)
	})
	addIdleNode(t, n, &node1, "node-2")
	go reconciler.Run(ctx, n.store, quietLogger(), reconciler.Options{
		LeaderElection: reconciler.LeaderElection{Disabled: true},
		Scheduler:      reconciler.SchedulerOptions{RetryDelay: 100 * time.Millisecond},
	})

	for _, tc := range []struct{ pod, image, want string }{
		{"near-its-image", big, "node-1"},
		{"elsewhere", "localhost/absent:1", "node-2"},
	} {
		p := sleeperPod(tc.pod)
		p.Spec.NodeName = ""
		p.Spec.Containers[0].Image = tc.image
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}
		if err := n.store.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		eventually(t, tc.pod+" scheduled", func() string {
			var got corev1.Pod
			if err := n.store.Get(ctx, "default", tc.pod, &got); err != nil {
				return err.Error()
			}
			if got.Spec.NodeName != tc.want {
				return fmt.Sprintf("on %q, want %s", got.Spec.NodeName, tc.want)
			}
			return ""
		})
	}
}

// importBigImage imports an image of one layer holding size bytes into
// the node's containerd.
func importBigImage(t *testing.T, n *node, ref string, size int) {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "data", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := ociarchive.Write(&archive, ref, layer.Bytes(), ocispec.ImageConfig{Cmd: []string{"/data"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.rt.Import(t.Context(), &archive); err != nil {
		t.Fatal(err)
	}
}

// addIdleNode writes a Node like like, with twice its CPU, no images and a
// fresh lease, that no agent runs: the scheduler sees an emptier node.
func addIdleNode(t *testing.T, n *node, like *corev1.Node, name string) {
	t.Helper()
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	other.Status = *like.Status.DeepCopy()
	other.Status.Images = nil
	for _, list := range []corev1.ResourceList{other.Status.Capacity, other.Status.Allocatable} {
		cpu := list[corev1.ResourceCPU]
		cpu.Add(cpu)
		list[corev1.ResourceCPU] = cpu
	}
	now := metav1.Now()
	for i := range other.Status.Conditions {
		other.Status.Conditions[i].LastHeartbeatTime = now
	}
	if err := n.store.Create(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
	if err := n.store.Create(t.Context(), lease); err != nil {
		t.Fatal(err)
	}
}
