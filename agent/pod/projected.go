package pod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

type file struct {
	data []byte
	mode os.FileMode
}

// projectedFiles computes the files of a configMap, secret, downwardAPI or
// projected volume, by path inside the volume. The pod's runner keeps the
// tokens of its serviceAccountToken sources.
func (r *Runner) projectedFiles(ctx context.Context, pr *podRunner, p *corev1.Pod, sb *sandbox, src corev1.VolumeSource) (map[string]file, os.FileMode, error) {
	files := map[string]file{}
	mode := os.FileMode(0o644)
	switch {
	case src.ConfigMap != nil:
		mode = fileMode(src.ConfigMap.DefaultMode, mode)
		return files, mode, r.configMapFiles(ctx, p.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, mode, files)
	case src.Secret != nil:
		mode = fileMode(src.Secret.DefaultMode, mode)
		return files, mode, r.secretFiles(ctx, p.Namespace, src.Secret.SecretName, src.Secret.Items, src.Secret.Optional, mode, files)
	case src.DownwardAPI != nil:
		mode = fileMode(src.DownwardAPI.DefaultMode, mode)
		return files, mode, downwardFiles(p, sb, r.cfg.NodeName, r.cfg.HostIP, src.DownwardAPI.Items, mode, files)
	}
	mode = fileMode(src.Projected.DefaultMode, mode)
	for _, s := range src.Projected.Sources {
		var err error
		switch {
		case s.ConfigMap != nil:
			err = r.configMapFiles(ctx, p.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, mode, files)
		case s.Secret != nil:
			err = r.secretFiles(ctx, p.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, mode, files)
		case s.DownwardAPI != nil:
			err = downwardFiles(p, sb, r.cfg.NodeName, r.cfg.HostIP, s.DownwardAPI.Items, mode, files)
		case s.ServiceAccountToken != nil:
			err = r.tokenFile(ctx, pr, p, s.ServiceAccountToken, mode, files)
		default:
			err = errors.New("projected sources supported: configMap, secret, downwardAPI, serviceAccountToken")
		}
		if err != nil {
			return nil, 0, err
		}
	}
	return files, mode, nil
}

func fileMode(m *int32, def os.FileMode) os.FileMode {
	if m == nil {
		return def
	}
	return os.FileMode(*m) & os.ModePerm
}

func (r *Runner) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, opt *bool, mode os.FileMode, out map[string]file) error {
	cm, err := r.cfg.Lookup.ConfigMap(ctx, ns, name)
	if err != nil {
		if errors.Is(err, ErrRefNotFound) && optional(opt) {
			return nil
		}
		return fmt.Errorf("configMap %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configMap "+name, data, items, opt, mode, out)
}

func (r *Runner) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, opt *bool, mode os.FileMode, out map[string]file) error {
	s, err := r.cfg.Lookup.Secret(ctx, ns, name)
	if err != nil {
		if errors.Is(err, ErrRefNotFound) && optional(opt) {
			return nil
		}
		return fmt.Errorf("secret %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	return keyFiles("secret "+name, data, items, opt, mode, out)
}

// keyFiles maps keys to files: every key to a file of its name, or only the
// listed items to their paths and modes.
func keyFiles(what string, data map[string][]byte, items []corev1.KeyToPath, opt *bool, mode os.FileMode, out map[string]file) error {
	if len(items) == 0 {
		for k, v := range data {
			out[k] = file{data: v, mode: mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional(opt) {
				continue
			}
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		if err := checkRelative(it.Path); err != nil {
			return err
		}
		out[it.Path] = file{data: v, mode: fileMode(it.Mode, mode)}
	}
	return nil
}

func downwardFiles(p *corev1.Pod, sb *sandbox, node, hostIP string, items []corev1.DownwardAPIVolumeFile, mode os.FileMode, out map[string]file) error {
	for _, it := range items {
		if err := checkRelative(it.Path); err != nil {
			return err
		}
		var v string
		var err error
		switch {
		case it.FieldRef != nil && it.FieldRef.FieldPath == "metadata.labels":
			v = formatMap(p.Labels)
		case it.FieldRef != nil && it.FieldRef.FieldPath == "metadata.annotations":
			v = formatMap(p.Annotations)
		case it.FieldRef != nil:
			v, err = fieldValue(p, sb, node, hostIP, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			c := containerNamed(p, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return fmt.Errorf("downwardAPI %s: no container %q", it.Path, it.ResourceFieldRef.ContainerName)
			}
			v, err = resourceValue(c, it.ResourceFieldRef)
		}
		if err != nil {
			return fmt.Errorf("downwardAPI %s: %w", it.Path, err)
		}
		out[it.Path] = file{data: []byte(v), mode: fileMode(it.Mode, mode)}
	}
	return nil
}

func (r *Runner) tokenFile(ctx context.Context, pr *podRunner, p *corev1.Pod, src *corev1.ServiceAccountTokenProjection, mode os.FileMode, out map[string]file) error {
	if err := checkRelative(src.Path); err != nil {
		return err
	}
	t, err := r.serviceAccountToken(ctx, pr, p, src)
	if err != nil {
		return fmt.Errorf("serviceAccountToken %s: %w", src.Path, err)
	}
	out[src.Path] = file{data: []byte(t), mode: mode}
	return nil
}

func containerNamed(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name || name == "" {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

// formatMap is the downward API's form of labels and annotations.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

func checkRelative(path string) error {
	if path == "" || filepath.IsAbs(path) || strings.HasPrefix(filepath.Clean(path), "..") || strings.HasPrefix(path, "..") {
		return fmt.Errorf("path %q must be relative, inside the volume, and not start with '..'", path)
	}
	return nil
}

// writeAtomic makes dir hold exactly files, as the kubelet's atomic writer
// does: the files go into a new hidden directory, the ..data link is swapped
// to it in one rename, and each top-level name links through ..data. Nothing
// is written when the content is unchanged.
func writeAtomic(dir string, files map[string]file) error {
	dataLink := filepath.Join(dir, "..data")
	if same(dataLink, files) {
		return nil
	}
	ts, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	for path, f := range files {
		full := filepath.Join(ts, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil {
			return err
		}
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return err
	}
	old, _ := os.Readlink(dataLink)
	tmp := filepath.Join(dir, "..data_tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dataLink); err != nil {
		return err
	}
	top := map[string]bool{}
	for path := range files {
		top[strings.SplitN(filepath.ToSlash(path), "/", 2)[0]] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return err
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !top[e.Name()] {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if old != "" && old != filepath.Base(ts) {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// same reports whether the directory behind the ..data link holds exactly
// files, with the same content and modes.
func same(dataLink string, files map[string]file) bool {
	target, err := os.Readlink(dataLink)
	if err != nil {
		return false
	}
	root := filepath.Join(filepath.Dir(dataLink), target)
	n := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		f, ok := files[rel]
		if !ok {
			return errors.New("extra")
		}
		b, err := os.ReadFile(path)
		info, ierr := d.Info()
		if err != nil || ierr != nil || !bytes.Equal(b, f.data) || info.Mode().Perm() != f.mode {
			return errors.New("differs")
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}
