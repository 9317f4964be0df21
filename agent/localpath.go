package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	listersstoragev1 "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/storageclass"
)

// localPath provisions the claims of keelson's local-path StorageClass that
// the scheduler chose this node for (volume.kubernetes.io/selected-node): a
// directory under dir for each, and a PersistentVolume of it, set aside for
// the claim and reachable only from this node; the volume binder then binds
// them. A local-path volume being deleted keeps its finalizer until its
// directory is removed here. What the node gives out is bounded by
// capacity, which its Node announces for the scheduler to count.
type localPath struct {
	client   kubernetes.Interface
	node     string
	dir      string
	capacity resource.Quantity
	claims   listerscorev1.PersistentVolumeClaimLister
	volumes  listerscorev1.PersistentVolumeLister
	classes  listersstoragev1.StorageClassLister
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *slog.Logger
}

const (
	lpClaimPrefix  = "claim/"
	lpVolumePrefix = "volume/"
)

func newLocalPath(client kubernetes.Interface, f informers.SharedInformerFactory, node, dir string, capacity resource.Quantity, log *slog.Logger) *localPath {
	l := &localPath{
		client: client, node: node, dir: dir, capacity: capacity, log: log,
		claims: f.Core().V1().PersistentVolumeClaims().Lister(), volumes: f.Core().V1().PersistentVolumes().Lister(),
		classes: f.Storage().V1().StorageClasses().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "local-path"}),
	}
	onClaim := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			l.queue.Add(lpClaimPrefix + key)
		}
	}
	f.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onClaim, UpdateFunc: func(_, cur any) { onClaim(cur) },
	})
	onVolume := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && pv.Annotations[keelsonv1alpha1.AnnotationLocalPathNode] == node {
			l.queue.Add(lpVolumePrefix + pv.Name)
		}
	}
	f.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onVolume, UpdateFunc: func(_, cur any) { onVolume(cur) },
	})
	f.Storage().V1().StorageClasses().Informer() // listed for the claims' classes
	return l
}

// run works the queue until ctx ends.
func (l *localPath) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		l.queue.ShutDown()
	}()
	for {
		key, quit := l.queue.Get()
		if quit {
			return
		}
		err := l.sync(ctx, key)
		switch {
		case err == nil:
			l.queue.Forget(key)
		case ctx.Err() == nil:
			l.log.Warn("local-path storage", "key", key, "err", err)
			l.queue.AddRateLimited(key)
		}
		l.queue.Done(key)
	}
}

func (l *localPath) sync(ctx context.Context, key string) error {
	if name, ok := strings.CutPrefix(key, lpVolumePrefix); ok {
		pv, err := l.volumes.Get(name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return l.cleanUp(ctx, pv)
	}
	ns, name, err := cache.SplitMetaNamespaceKey(strings.TrimPrefix(key, lpClaimPrefix))
	if err != nil {
		return nil
	}
	pvc, err := l.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return l.provision(ctx, pvc)
}

// volumeName is the name of a claim's provisioned volume, as Kubernetes'
// provisioners name them.
func volumeName(pvc *corev1.PersistentVolumeClaim) string { return "pvc-" + string(pvc.UID) }

// provision makes the directory and the volume of a claim of local-path
// that this node was chosen for and that has no volume yet.
func (l *localPath) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.DeletionTimestamp != nil || pvc.Spec.VolumeName != "" || pvc.Annotations[annSelectedNode] != l.node {
		return nil
	}
	classes, err := l.classes.List(labels.Everything())
	if err != nil {
		return err
	}
	sc := storageclass.Find(classes, storageclass.OfClaim(pvc, classes))
	if sc == nil || sc.Provisioner != keelsonv1alpha1.LocalPathProvisioner {
		return nil
	}
	name := volumeName(pvc)
	if _, err := l.volumes.Get(name); err == nil {
		return nil
	}
	req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if used := l.used(); used+req.Value() > l.capacity.Value() {
		return fmt.Errorf("claim %s/%s asks for %s of local-path storage; node %s gives %s and has given %s",
			pvc.Namespace, pvc.Name, req.String(), l.node, l.capacity.String(), resource.NewQuantity(used, resource.BinarySI).String())
	}
	dir := filepath.Join(l.dir, name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("local-path volume of claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // any container user may write, as local-path-provisioner does
		return err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				"pv.kubernetes.io/provisioned-by":       keelsonv1alpha1.LocalPathProvisioner,
				keelsonv1alpha1.AnnotationLocalPathNode: l.node,
			},
			Finalizers: []string{keelsonv1alpha1.FinalizerLocalPath},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: req},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    &mode,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{l.node}}},
			}}}},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
		},
	}
	if _, err := l.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create volume %s of claim %s/%s: %w", name, pvc.Namespace, pvc.Name, err)
	}
	l.log.Info("local-path volume provisioned", "claim", pvc.Namespace+"/"+pvc.Name, "volume", name, "dir", dir)
	return nil
}

// used is the local-path storage this node has given out.
func (l *localPath) used() int64 {
	pvs, _ := l.volumes.List(labels.Everything())
	var n int64
	for _, pv := range pvs {
		if pv.Annotations[keelsonv1alpha1.AnnotationLocalPathNode] == l.node {
			q := pv.Spec.Capacity[corev1.ResourceStorage]
			n += q.Value()
		}
	}
	return n
}

// cleanUp removes the directory of a local-path volume of this node that
// is being deleted, then its finalizer, so the volume goes.
func (l *localPath) cleanUp(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.DeletionTimestamp == nil || !slices.Contains(pv.Finalizers, keelsonv1alpha1.FinalizerLocalPath) {
		return nil
	}
	if pv.Spec.Local != nil {
		dir := filepath.Clean(pv.Spec.Local.Path)
		if rel, err := filepath.Rel(l.dir, dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("volume %s: directory %s is not under the local-path directory %s: left alone", pv.Name, dir, l.dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("volume %s: remove %s: %w", pv.Name, dir, err)
		}
	}
	cp := pv.DeepCopy()
	cp.Finalizers = slices.DeleteFunc(cp.Finalizers, func(f string) bool { return f == keelsonv1alpha1.FinalizerLocalPath })
	if _, err := l.client.CoreV1().PersistentVolumes().Update(ctx, cp, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		if apierrors.IsConflict(err) {
			return errors.New("volume changed meanwhile: again")
		}
		return fmt.Errorf("volume %s: drop finalizer: %w", pv.Name, err)
	}
	l.log.Info("local-path volume removed", "volume", pv.Name)
	return nil
}

// annSelectedNode is the node the scheduler chose for a claim's first pod.
const annSelectedNode = "volume.kubernetes.io/selected-node"
