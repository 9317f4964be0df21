package agent

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// maxNodeImages caps the images a Node lists, largest first, as the
// kubelet's nodeStatusMaxImages does.
const maxNodeImages = 50

// nodeImages are the images on the node, as the scheduler's image
// locality reads them: each by its name and repository@digest, with its
// size. An error leaves the images as they were posted.
func (a *Agent) nodeImages(ctx context.Context, old []corev1.ContainerImage) []corev1.ContainerImage {
	imgs, err := a.cfg.Runtime.ListImages(ctx)
	if err != nil {
		return old
	}
	byID := map[string]*corev1.ContainerImage{}
	var out []*corev1.ContainerImage
	for _, img := range imgs {
		ci := byID[img.ID]
		if ci == nil {
			ci = &corev1.ContainerImage{SizeBytes: img.Size}
			byID[img.ID] = ci
			out = append(out, ci)
		}
		for _, n := range []string{img.RepoDigest(), img.Ref} {
			if n != "" && !slices.Contains(ci.Names, n) {
				ci.Names = append(ci.Names, n)
			}
		}
	}
	slices.SortFunc(out, func(x, y *corev1.ContainerImage) int {
		return cmp.Or(cmp.Compare(y.SizeBytes, x.SizeBytes), cmp.Compare(x.Names[0], y.Names[0]))
	})
	list := make([]corev1.ContainerImage, 0, min(len(out), maxNodeImages))
	for _, ci := range out[:min(len(out), maxNodeImages)] {
		slices.Sort(ci.Names)
		list = append(list, *ci)
	}
	return list
}

// readyCondition is the node's Ready: True only while the runtime serves
// and the pod network can be set up, else False with the kubelet's
// KubeletNotReady and why.
func (a *Agent) readyCondition(ctx context.Context) corev1.NodeCondition {
	var why []string
	if err := a.cfg.Runtime.Ready(ctx); err != nil {
		why = append(why, err.Error())
	}
	if a.lazy != nil {
		if _, err := a.lazy.get(); err != nil {
			why = append(why, "container runtime network not ready: "+err.Error())
		}
	}
	if len(why) > 0 {
		return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: strings.Join(why, "; ")}
	}
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "keelson agent is posting ready status"}
}

// pidsAvailable is how many more processes (threads) the machine can have:
// kernel.pid_max (or threads-max, if lower) less those that exist.
func pidsAvailable() (avail, limit int64, err error) {
	limit, err = readInt("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, 0, err
	}
	if tm, err := readInt("/proc/sys/kernel/threads-max"); err == nil && tm < limit {
		limit = tm
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, 0, fmt.Errorf("sysinfo: %w", err)
	}
	return limit - int64(si.Procs), limit, nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
