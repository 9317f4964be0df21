package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
)

// storageYAML is a PersistentVolume on a directory of this machine and a
// StatefulSet whose claim template binds to it: its pod counts its boots in
// a file of the volume.
func storageYAML(dir string) string {
	return `apiVersion: v1
kind: Namespace
metadata: {name: storage}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: kv-disk}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: ` + dir + `, type: DirectoryOrCreate}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: kv, namespace: storage}
spec:
  serviceName: kv
  replicas: 1
  selector: {matchLabels: {app: kv}}
  template:
    metadata: {labels: {app: kv}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: kv
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'n=$(cat /data/boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/boots; echo "boot $n"; exec sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      storageClassName: ""
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`
}

// TestStatefulSetKeepsData runs, under keelson up on containerd, a
// StatefulSet whose claim binds to a hostPath PersistentVolume from Git:
// its pod writes into the volume; deleted, it comes back under its name
// with the same claim and reads what it wrote.
func TestStatefulSetKeepsData(t *testing.T) {
	u := newUpFixture(t)
	dir := filepath.Join(t.TempDir(), "kv-disk")
	commit(t, u.repo, "storage/kv.yaml", storageYAML(dir), "storage")
	up := u.start(t, u.repo, "--path", "storage")
	u.waitPods(t, up, 1)
	c := u.client(t)
	claim, err := c.CoreV1().PersistentVolumeClaims("storage").Get(t.Context(), "data-kv-0", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName != "kv-disk" {
		t.Fatalf("claim data-kv-0: %+v, %v", claim, err)
	}
	eventuallyOut(t, "kv-0's first boot", func() (string, bool) {
		out, err := u.keelson("logs", "-n", "storage", "kv-0")
		return out, err == nil && out == "boot 1\n"
	})
	if b, err := os.ReadFile(filepath.Join(dir, "boots")); err != nil || string(b) != "1\n" {
		t.Fatalf("the volume's directory holds %q, %v", b, err)
	}
	first, err := c.CoreV1().Pods("storage").Get(t.Context(), "kv-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Delete kv-0 as an eviction does: marked, then stopped and removed by
	// its node.
	etcd := u.args[slices.Index(u.args, "--etcd-listen-client")+1]
	withStore(t, etcd, func(st *store.Store) {
		p := &corev1.Pod{}
		if err := st.Get(t.Context(), "storage", "kv-0", p); err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		p.DeletionTimestamp = &now
		if err := st.Update(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	})
	eventuallyOut(t, "kv-0 back, reading what it wrote", func() (string, bool) {
		p, err := c.CoreV1().Pods("storage").Get(t.Context(), "kv-0", metav1.GetOptions{})
		if err != nil || p.UID == first.UID || !podReady(p) {
			return fmt.Sprint(err), false
		}
		out, err := u.keelson("logs", "-n", "storage", "kv-0")
		return out, err == nil && strings.Contains(out, "boot 2")
	})
	if b, err := os.ReadFile(filepath.Join(dir, "boots")); err != nil || string(b) != "2\n" {
		t.Fatalf("the volume's directory holds %q, %v", b, err)
	}
}
