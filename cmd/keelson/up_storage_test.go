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

// markPodDeleted deletes a pod as an eviction does: marked in the store,
// then stopped and removed by its node's agent.
func (u *upFixture) markPodDeleted(t *testing.T, namespace, name string) {
	t.Helper()
	etcd := u.args[slices.Index(u.args, "--etcd-listen-client")+1]
	withStore(t, etcd, func(st *store.Store) {
		p := &corev1.Pod{}
		if err := st.Get(t.Context(), namespace, name, p); err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		p.DeletionTimestamp = &now
		if err := st.Update(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	})
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

	u.markPodDeleted(t, "storage", "kv-0")
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

// localPathYAML is a StatefulSet whose claim template names no class: it
// gets the default, keelson's local-path, and its claims go with the set.
const localPathYAML = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: kv, namespace: storage}
spec:
  serviceName: kv
  replicas: 1
  selector: {matchLabels: {app: kv}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
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
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
`

// TestLocalPathStorage: a claim of the default local-path class is
// provisioned by the node agent of its first pod, a directory under the
// data dir's storage; the pod, deleted, comes back to its data; the set and
// its claim deleted from Git, the volume (reclaim Delete) and its
// directory go.
func TestLocalPathStorage(t *testing.T) {
	u := newUpFixture(t)
	commit(t, u.repo, "storage/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: storage}\n", "namespace")
	commit(t, u.repo, "storage/kv.yaml", localPathYAML, "kv")
	up := u.start(t, u.repo, "--path", "storage")
	u.waitPods(t, up, 1)
	c := u.client(t)
	claim, err := c.CoreV1().PersistentVolumeClaims("storage").Get(t.Context(), "data-kv-0", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName != "pvc-"+string(claim.UID) {
		t.Fatalf("claim data-kv-0: %+v, %v", claim, err)
	}
	pv, err := c.CoreV1().PersistentVolumes().Get(t.Context(), claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(u.data, "storage", pv.Name)
	if pv.Spec.Local == nil || pv.Spec.Local.Path != dir || pv.Spec.StorageClassName != "local-path" {
		t.Fatalf("volume %s: %+v", pv.Name, pv.Spec)
	}
	eventuallyOut(t, "kv-0's first boot in its directory", func() (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, "boots"))
		return fmt.Sprint(string(b), err), err == nil && string(b) == "1\n"
	})
	first, err := c.CoreV1().Pods("storage").Get(t.Context(), "kv-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u.markPodDeleted(t, "storage", "kv-0")
	eventuallyOut(t, "kv-0 back on its data", func() (string, bool) {
		p, err := c.CoreV1().Pods("storage").Get(t.Context(), "kv-0", metav1.GetOptions{})
		if err != nil || p.UID == first.UID || !podReady(p) {
			return fmt.Sprint(err), false
		}
		b, err := os.ReadFile(filepath.Join(dir, "boots"))
		return string(b), err == nil && string(b) == "2\n"
	})

	// keelson up stopped and started again, its agent with it: the claim,
	// its volume and the data stay, and the pod runs on them (a container
	// started again counts one more boot, never fewer).
	if code := u.interrupt(t, up); code != 0 {
		t.Fatalf("keelson up exited %d after SIGINT:\n%s", code, up.out)
	}
	up = u.start(t, u.repo, "--path", "storage")
	u.waitPods(t, up, 1)
	if again, err := c.CoreV1().PersistentVolumes().Get(t.Context(), pv.Name, metav1.GetOptions{}); err != nil || again.UID != pv.UID || again.Status.Phase != corev1.VolumeBound {
		t.Fatalf("volume after a restart: %+v, %v", again, err)
	}
	eventuallyOut(t, "kv-0 on its data after the restart", func() (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, "boots"))
		return string(b), err == nil && (string(b) == "2\n" || string(b) == "3\n")
	})

	// The set leaves Git: its pod, its claim (whenDeleted: Delete), the
	// volume and its directory go.
	gitRun(t, u.repo, "rm", "-q", "storage/kv.yaml")
	gitRun(t, u.repo, "commit", "-q", "-m", "no kv")
	eventuallyOut(t, "the volume and its directory gone", func() (string, bool) {
		_, perr := c.CoreV1().PersistentVolumes().Get(t.Context(), pv.Name, metav1.GetOptions{})
		_, derr := os.Stat(dir)
		return fmt.Sprint(perr, " ", derr), perr != nil && strings.Contains(perr.Error(), "not found") && os.IsNotExist(derr)
	})
}

// ephemeralYAML is a pod whose scratch space is an ephemeral volume of the
// default class: a local-path claim made for it.
const ephemeralYAML = `apiVersion: v1
kind: Pod
metadata: {name: scratch, namespace: storage}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo scratch > /scratch/note && echo wrote && exec sleep 3600']
    volumeMounts: [{name: data, mountPath: /scratch}]
  volumes:
  - name: data
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 16Mi}}
`

// TestEphemeralVolumeOnContainerd: a pod's ephemeral volume is a claim made
// for it (scratch-data), provisioned by local-path; the pod gone, the
// claim, its volume and its directory go too.
func TestEphemeralVolumeOnContainerd(t *testing.T) {
	u := newUpFixture(t)
	commit(t, u.repo, "storage/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: storage}\n", "namespace")
	commit(t, u.repo, "storage/pod.yaml", ephemeralYAML, "scratch")
	up := u.start(t, u.repo, "--path", "storage")
	u.waitPods(t, up, 1)
	c := u.client(t)
	claim, err := c.CoreV1().PersistentVolumeClaims("storage").Get(t.Context(), "scratch-data", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound || metav1.GetControllerOf(claim) == nil || metav1.GetControllerOf(claim).Name != "scratch" {
		t.Fatalf("claim scratch-data: %+v, %v", claim, err)
	}
	dir := filepath.Join(u.data, "storage", claim.Spec.VolumeName)
	eventuallyOut(t, "the note in the volume's directory", func() (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, "note"))
		return fmt.Sprint(string(b), err), err == nil && string(b) == "scratch\n"
	})
	gitRun(t, u.repo, "rm", "-q", "storage/pod.yaml")
	gitRun(t, u.repo, "commit", "-q", "-m", "no scratch")
	eventuallyOut(t, "the claim, its volume and its directory gone", func() (string, bool) {
		_, cerr := c.CoreV1().PersistentVolumeClaims("storage").Get(t.Context(), "scratch-data", metav1.GetOptions{})
		_, perr := c.CoreV1().PersistentVolumes().Get(t.Context(), claim.Spec.VolumeName, metav1.GetOptions{})
		_, derr := os.Stat(dir)
		return fmt.Sprint(cerr, " ", perr, " ", derr), cerr != nil && perr != nil && os.IsNotExist(derr)
	})
}
