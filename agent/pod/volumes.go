package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/runtime"
)

// volumeDir is where a pod's volume lives on the node.
func volumeDir(sb *sandbox, kind, name string) string {
	return filepath.Join(sb.dir, "volumes", kind, name)
}

// setUpVolumes makes every volume of the pod ready to mount and returns the
// host path of each by name. ConfigMap, Secret, downward API and projected
// volumes are written again on each call when their content changed, with an
// atomic swap, so containers see a change all at once; so are they when a
// service account token they hold is rotated (pr keeps the pod's tokens).
func (r *Runner) setUpVolumes(ctx context.Context, pr *podRunner, p *corev1.Pod, sb *sandbox) (map[string]string, error) {
	paths := make(map[string]string, len(p.Spec.Volumes))
	for _, v := range p.Spec.Volumes {
		path, err := r.setUpVolume(ctx, pr, p, sb, v)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		paths[v.Name] = path
		if c := v.PersistentVolumeClaim; c != nil && c.ReadOnly {
			if sb.readOnly == nil {
				sb.readOnly = map[string]bool{}
			}
			sb.readOnly[v.Name] = true
		}
	}
	return paths, nil
}

func (r *Runner) setUpVolume(ctx context.Context, pr *podRunner, p *corev1.Pod, sb *sandbox, v corev1.Volume) (string, error) {
	src := v.VolumeSource
	switch {
	case src.EmptyDir != nil:
		dir := volumeDir(sb, "empty-dir", v.Name)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", err
		}
		if src.EmptyDir.Medium == corev1.StorageMediumMemory {
			opts := "mode=1777"
			if l := src.EmptyDir.SizeLimit; l != nil && !l.IsZero() {
				opts += fmt.Sprintf(",size=%d", l.Value())
			}
			if err := ensureTmpfs(dir, opts); err != nil {
				return "", err
			}
		}
		return dir, os.Chmod(dir, 0o777)
	case src.HostPath != nil:
		return src.HostPath.Path, hostPath(src.HostPath)
	case src.PersistentVolumeClaim != nil:
		return r.claimPath(ctx, p, src.PersistentVolumeClaim.ClaimName)
	case src.Ephemeral != nil:
		// Its claim, "<pod>-<volume>", made for the pod by the control plane.
		return r.claimPath(ctx, p, p.Name+"-"+v.Name)
	case src.ConfigMap != nil, src.Secret != nil, src.DownwardAPI != nil, src.Projected != nil:
		files, _, err := r.projectedFiles(ctx, pr, p, sb, src)
		if err != nil {
			return "", err
		}
		kind := "projected"
		if src.Secret != nil {
			kind = "secret"
		}
		dir := volumeDir(sb, kind, v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if src.Secret != nil || (src.Projected != nil && hasSecret(src.Projected)) {
			// Secret values and tokens live only in memory, never on the
			// node's disk.
			if err := ensureTmpfs(dir, "mode=0755"); err != nil {
				return "", err
			}
		}
		return dir, writeAtomic(dir, files)
	}
	return "", fmt.Errorf("this volume type is not supported (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim, ephemeral)")
}

// claimPath is the directory on this node of the volume a claim is bound
// to. The claim must be bound, both ways, and its volume's directory must
// be there: a directory that vanished is an error that says so, never made
// again empty, since the data the pod expects is gone.
func (r *Runner) claimPath(ctx context.Context, p *corev1.Pod, name string) (string, error) {
	pvc, err := r.cfg.Lookup.Claim(ctx, p.Namespace, name)
	if err != nil {
		return "", err
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound to a volume yet (phase %s)", name, cmpOr(string(pvc.Status.Phase), "Pending"))
	}
	pv, err := r.cfg.Lookup.Volume(ctx, pvc.Spec.VolumeName)
	if err != nil {
		return "", err
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return "", fmt.Errorf("persistentvolume %q is not bound to claim %q", pv.Name, name)
	}
	switch {
	case pv.Spec.HostPath != nil:
		h := pv.Spec.HostPath
		if h.Type == nil || *h.Type == corev1.HostPathUnset {
			h = h.DeepCopy()
			h.Type = ptrTo(corev1.HostPathDirectory) // a volume's directory is there, or its data is gone
		}
		if err := hostPath(h); err != nil {
			return "", fmt.Errorf("persistentvolume %q: %w", pv.Name, err)
		}
		return h.Path, nil
	case pv.Spec.Local != nil:
		if fi, err := os.Stat(pv.Spec.Local.Path); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("persistentvolume %q: directory %s is not on this node: its data is gone, or the volume is another node's", pv.Name, pv.Spec.Local.Path)
		}
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q: its source is not supported (keelson mounts hostPath and local volumes)", pv.Name)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func ptrTo[T any](v T) *T { return &v }

// hasSecret reports whether a projected volume holds credentials: a
// secret's values or a service account token.
func hasSecret(p *corev1.ProjectedVolumeSource) bool {
	for _, s := range p.Sources {
		if s.Secret != nil || s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}

// ensureTmpfs mounts a tmpfs on dir unless one is there already.
func ensureTmpfs(dir, opts string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		var parent unix.Statfs_t
		if unix.Statfs(filepath.Dir(dir), &parent) == nil && parent.Type != unix.TMPFS_MAGIC {
			return nil
		}
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// tearDownVolumes unmounts the pod's memory-backed volumes so its dir can go.
func tearDownVolumes(podDir string) error {
	var errs []error
	for _, kind := range []string{"empty-dir", "secret", "projected"} {
		dirs, _ := filepath.Glob(filepath.Join(podDir, "volumes", kind, "*"))
		for _, d := range dirs {
			if err := unix.Unmount(d, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// hostPath checks or creates the path as its type says.
func hostPath(h *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	fi, err := os.Stat(h.Path)
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			return os.MkdirAll(h.Path, 0o755)
		}
		t = corev1.HostPathDirectory
	case corev1.HostPathFileOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		t = corev1.HostPathFile
	}
	if err != nil {
		return fmt.Errorf("hostPath %s (type %s): %w", h.Path, t, err)
	}
	ok := map[corev1.HostPathType]bool{
		corev1.HostPathDirectory: fi.IsDir(),
		corev1.HostPathFile:      fi.Mode().IsRegular(),
		corev1.HostPathSocket:    fi.Mode()&os.ModeSocket != 0,
		corev1.HostPathCharDev:   fi.Mode()&os.ModeCharDevice != 0,
		corev1.HostPathBlockDev:  fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0,
	}[t]
	if !ok {
		return fmt.Errorf("hostPath %s is not a %s", h.Path, t)
	}
	return nil
}

// mounts are the container's volume mounts on the node's paths.
func mounts(c *corev1.Container, paths map[string]string, readOnly map[string]bool) ([]runtime.Mount, error) {
	var out []runtime.Mount
	for _, m := range c.VolumeMounts {
		src, ok := paths[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q names no volume of the pod", m.Name)
		}
		if m.SubPath != "" {
			if filepath.IsAbs(m.SubPath) || strings.Contains(filepath.Clean(m.SubPath), "..") {
				return nil, fmt.Errorf("volumeMount %q: subPath %q must be a relative path inside the volume", m.Name, m.SubPath)
			}
			src = filepath.Join(src, m.SubPath)
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, runtime.Mount{Source: src, Destination: m.MountPath, ReadOnly: m.ReadOnly || readOnly[m.Name]})
	}
	return out, nil
}
