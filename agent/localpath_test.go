package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/storageclass"
)

// The provisioner's rules on one node, with the API faked (the whole path,
// scheduler to pod, runs on containerd in cmd/keelson's
// TestLocalPathStorage): it provisions only claims of local-path chosen for
// its node, within its capacity, and removes only directories under its own.
func TestLocalPath(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "storage")
	outside := filepath.Join(root, "precious")
	for _, d := range []string{dir, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	wffc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: keelsonv1alpha1.LocalPathClass, Annotations: map[string]string{storageclass.AnnotationDefault: "true"}},
		Provisioner: keelsonv1alpha1.LocalPathProvisioner, VolumeBindingMode: &mode}
	claim := func(name, node, size string, class *string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: name, UID: types.UID("uid-" + name), Annotations: map[string]string{annSelectedNode: node}},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
		}
	}
	cs := fake.NewClientset(
		wffc,
		claim("mine", "n1", "1Gi", nil),
		claim("theirs", "n2", "1Gi", nil),
		claim("other-class", "n1", "1Gi", ptr.To("nfs")),
		claim("too-big", "n1", "5Gi", nil),
	)
	f := informers.NewSharedInformerFactory(cs, 0)
	l := newLocalPath(cs, f, "n1", dir, resource.MustParse("4Gi"), slog.New(slog.DiscardHandler))
	f.Start(t.Context().Done())
	t.Cleanup(f.Shutdown)
	f.WaitForCacheSync(t.Context().Done())

	for _, name := range []string{"mine", "theirs", "other-class"} {
		if err := l.sync(t.Context(), "claim/db/"+name); err != nil {
			t.Fatalf("claim %s: %v", name, err)
		}
	}
	pvs, _ := cs.CoreV1().PersistentVolumes().List(t.Context(), metav1.ListOptions{})
	if len(pvs.Items) != 1 {
		t.Fatalf("%d volumes, want one, for claim mine", len(pvs.Items))
	}
	pv := pvs.Items[0]
	want := filepath.Join(dir, "pvc-uid-mine")
	if pv.Name != "pvc-uid-mine" || pv.Spec.Local == nil || pv.Spec.Local.Path != want || pv.Spec.ClaimRef.Name != "mine" ||
		pv.Annotations[keelsonv1alpha1.AnnotationLocalPathNode] != "n1" || !slices.Contains(pv.Finalizers, keelsonv1alpha1.FinalizerLocalPath) ||
		pv.Spec.StorageClassName != keelsonv1alpha1.LocalPathClass || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Fatalf("volume %+v", pv)
	}
	if fi, err := os.Stat(want); err != nil || !fi.IsDir() {
		t.Fatalf("directory %s: %v", want, err)
	}
	// 1Gi given of 4Gi: 5Gi more does not fit.
	waitCached(t, f.Core().V1().PersistentVolumes().Informer(), 1)
	if err := l.sync(t.Context(), "claim/db/too-big"); err == nil {
		t.Fatal("a claim past the node's capacity was provisioned")
	}

	// Released and kept (reclaim Retain): the directory stays.
	kept := pv.DeepCopy()
	kept.Status.Phase = corev1.VolumeReleased
	kept.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	if err := f.Core().V1().PersistentVolumes().Informer().GetStore().Update(kept); err != nil {
		t.Fatal(err)
	}
	if err := l.sync(t.Context(), "volume/"+pv.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("directory of a retained volume: %v", err)
	}

	// Deleted: the directory goes, then the finalizer. A volume whose
	// path is not under the node's directory is left alone.
	mark := func(pv *corev1.PersistentVolume) {
		now := metav1.Now()
		pv.DeletionTimestamp = &now
		if err := f.Core().V1().PersistentVolumes().Informer().GetStore().Update(pv); err != nil {
			t.Fatal(err)
		}
	}
	mark(&pv)
	if err := l.sync(t.Context(), "volume/"+pv.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Errorf("directory %s after the volume's deletion: %v", want, err)
	}
	got, _ := cs.CoreV1().PersistentVolumes().Get(t.Context(), pv.Name, metav1.GetOptions{})
	if slices.Contains(got.Finalizers, keelsonv1alpha1.FinalizerLocalPath) {
		t.Errorf("finalizer kept: %v", got.Finalizers)
	}
	evil := pv.DeepCopy()
	evil.Name, evil.ResourceVersion, evil.Spec.Local.Path = "evil", "", outside
	if _, err := cs.CoreV1().PersistentVolumes().Create(t.Context(), evil, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mark(evil)
	if err := l.sync(t.Context(), "volume/evil"); err == nil {
		t.Error("a directory outside the node's own was to be removed")
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("%s removed: %v", outside, err)
	}
}

func waitCached(t *testing.T, inf cache.SharedIndexInformer, n int) {
	t.Helper()
	for range 200 {
		if len(inf.GetStore().List()) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("cache holds %d objects, want %d", len(inf.GetStore().List()), n)
}
