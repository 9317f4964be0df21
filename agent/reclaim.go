package agent

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keelson/keelson/agent/runtime"
)

// The pods' files on the node, as package pod lays them out:
// RootDir/pods/<uid>/logs/<container>_<attempt>.log and
// RootDir/pods/<uid>/volumes/empty-dir/<volume>.
func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.cfg.RootDir, "pods", string(uid))
}

// reclaimDisk frees what the node keeps for pods that need it no more,
// before any pod is evicted for disk, as the kubelet's garbage collection of
// dead containers does under DiskPressure: the containers and files (logs,
// volumes) of pods that are gone from the API, and of pods that finished.
// Unused images go next (removeUnusedImages), while the pressure lasts.
func (a *Agent) reclaimDisk(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range a.reclaimable(ctx) {
		wg.Go(func() {
			grace, what := orphanGrace, "a pod that is gone"
			if !t.gone {
				grace, what = 0, "a pod that finished" // its containers have exited
			}
			if err := a.runner.Kill(ctx, t.p, grace); err != nil {
				a.log.Warn("reclaiming disk: remove the containers and files of "+what, "pod", t.p.Namespace+"/"+t.p.Name, "uid", t.p.UID, "err", err)
				return
			}
			a.log.Info("reclaimed disk: removed the containers and files of "+what, "pod", t.p.Namespace+"/"+t.p.Name, "uid", t.p.UID)
		})
	}
	wg.Wait()
}

// removeUnusedImages deletes images no container on the node was made
// from and no running or pending pod bound here names, largest first, while still reports
// the pressure, as the kubelet's image garbage collection does when images
// and pods share a file system. An image under several names goes with
// all of them, or its space is not freed.
func (a *Agent) removeUnusedImages(ctx context.Context, pods []*corev1.Pod, still func() bool) {
	cs, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		a.log.Warn("reclaiming disk: list containers", "err", err)
		return // what is in use is unknown
	}
	imgs, err := a.cfg.Runtime.ListImages(ctx)
	if err != nil {
		a.log.Warn("reclaiming disk: list images", "err", err)
		return
	}
	used := map[string]bool{} // image ids and refs
	for _, c := range cs {
		used[c.ImageID], used[c.Spec.Image] = true, true
	}
	for _, p := range pods {
		if !active(p) {
			continue // finished: its containers are reclaimed first
		}
		for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
			used[c.Image] = true
		}
	}
	type image struct {
		id   string
		refs []string
		size int64
	}
	byID := map[string]*image{}
	var unused []*image
	for _, img := range imgs {
		i := byID[img.ID]
		if i == nil {
			i = &image{id: img.ID}
			byID[img.ID] = i
			unused = append(unused, i)
		}
		i.refs, i.size = append(i.refs, img.Ref), max(i.size, img.Size)
		if used[img.Ref] {
			used[img.ID] = true
		}
	}
	unused = slices.DeleteFunc(unused, func(i *image) bool { return used[i.id] })
	slices.SortFunc(unused, func(x, y *image) int { return cmp.Or(cmp.Compare(y.size, x.size), cmp.Compare(x.id, y.id)) })
	for _, i := range unused {
		if !still() {
			return
		}
		for _, ref := range i.refs {
			if err := a.cfg.Runtime.RemoveImage(ctx, ref); err != nil && !errors.Is(err, runtime.ErrImageNotFound) {
				a.log.Warn("reclaiming disk: remove an unused image", "image", ref, "err", err)
				continue
			}
			a.log.Info("reclaimed disk: removed an unused image", "image", ref, "size", i.size)
		}
	}
}

// reclaimTarget is a pod whose containers and files may go: gone from the
// API (p is then a stub with its UID, and its name where known), or
// finished.
type reclaimTarget struct {
	p    *corev1.Pod
	gone bool
}

// reclaimable finds the pods with containers or files on the node that
// are gone or finished.
func (a *Agent) reclaimable(ctx context.Context) map[types.UID]reclaimTarget {
	// The runtime and the disk are read before the pods: a pod whose
	// containers or files exist was in the informer before they were made,
	// so a pod created meanwhile is never taken for one that is gone.
	cs, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		a.log.Warn("reclaiming disk: list containers", "err", err)
	}
	dirs, _ := os.ReadDir(filepath.Join(a.cfg.RootDir, "pods"))
	bound := map[types.UID]*corev1.Pod{}
	for _, p := range a.boundPods() {
		bound[p.UID] = p
	}
	// Left alone: pods that left the API but not yet the agent, whose
	// workers stop them, and pods an eviction stops.
	a.mu.Lock()
	busy := map[types.UID]bool{}
	for _, p := range a.known {
		if _, ok := bound[p.UID]; !ok {
			busy[p.UID] = true
		}
	}
	for uid := range a.evicted {
		busy[uid] = true
	}
	for uid := range a.evicting {
		busy[uid] = true
	}
	a.mu.Unlock()

	targets := map[types.UID]reclaimTarget{}
	consider := func(uid types.UID, namespace, name string) {
		if _, ok := targets[uid]; ok || busy[uid] {
			return
		}
		if p, ok := bound[uid]; ok {
			if !active(p) && p.DeletionTimestamp == nil {
				targets[uid] = reclaimTarget{p: p}
			}
			return
		}
		stub := &corev1.Pod{}
		stub.UID, stub.Namespace, stub.Name = uid, namespace, name
		targets[uid] = reclaimTarget{p: stub, gone: true}
	}
	for _, c := range cs {
		consider(types.UID(c.Spec.PodUID), c.Spec.PodNamespace, c.Spec.PodName)
	}
	for _, d := range dirs {
		consider(types.UID(d.Name()), "", "")
	}
	return targets
}

// diskByPod measures what each pod keeps on the data dir's file system
// (nodefs), as the kubelet counts a pod's ephemeral storage: its emptyDir
// volumes, but those in memory, and its containers' logs. The kubelet
// counts the containers' writable layers too; keelson's runtime does not
// report their size.
func (a *Agent) diskByPod(pods []*corev1.Pod) podUsage {
	out := podUsage{}
	for _, p := range pods {
		dir := a.podDir(p.UID)
		u := usageOf{byContainer: map[string]int64{}}
		for _, v := range p.Spec.Volumes {
			if v.EmptyDir != nil && v.EmptyDir.Medium != corev1.StorageMediumMemory {
				u.total += diskUsage(filepath.Join(dir, "volumes", "empty-dir", v.Name))
			}
		}
		logs, _ := os.ReadDir(filepath.Join(dir, "logs"))
		for _, l := range logs {
			i := strings.LastIndexByte(l.Name(), '_')
			if i <= 0 {
				continue
			}
			n := diskUsage(filepath.Join(dir, "logs", l.Name()))
			u.total += n
			u.byContainer[l.Name()[:i]] += n
		}
		out[p.UID] = u
	}
	return out
}

// diskUsage is the space the files under path take on path's file
// system, as du counts it: allocated blocks, each inode once, not
// crossing into other file systems mounted below.
func diskUsage(path string) int64 {
	var root syscall.Stat_t
	if err := syscall.Lstat(path, &root); err != nil {
		return 0
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: counted as nothing
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) != nil {
			return nil
		}
		if uint64(st.Dev) != uint64(root.Dev) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		id := inode{uint64(st.Dev), uint64(st.Ino)}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		total += int64(st.Blocks) * 512
		return nil
	})
	return total
}
