package pod

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/runtime"
)

// containerSpec turns one of the pod's containers into what the runtime runs.
func (r *Runner) containerSpec(ctx context.Context, p *corev1.Pod, sb *sandbox, c *corev1.Container, attempt int, image string) (runtime.ContainerSpec, error) {
	env, err := r.env(ctx, p, sb, c)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	volumeMounts, err := mounts(c, sb.volumes, sb.readOnly)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	spec := runtime.ContainerSpec{
		PodUID: string(p.UID), PodNamespace: p.Namespace, PodName: p.Name,
		Name: c.Name, Attempt: attempt, Image: image,
		Command:     expandAll(c.Command, vars),
		Args:        expandAll(c.Args, vars),
		Env:         append([]string{"HOSTNAME=" + sb.hostname}, env...),
		WorkingDir:  c.WorkingDir,
		NetNSPath:   sb.netns,
		IPCNSPath:   sb.ipcns,
		HostNetwork: p.Spec.HostNetwork,
		Hostname:    sb.hostname,
		LogPath:     filepath.Join(sb.dir, "logs", fmt.Sprintf("%s_%d.log", c.Name, attempt)),
		Mounts: append([]runtime.Mount{
			{Source: sb.file("hosts"), Destination: "/etc/hosts"},
			{Source: sb.file("resolv.conf"), Destination: "/etc/resolv.conf"},
		}, volumeMounts...),
		Resources: resources(c.Resources),
		Security:  security(p.Spec.SecurityContext, c.SecurityContext),
	}
	return spec, nil
}

// env builds the container's environment as Kubernetes does: envFrom first,
// then env in order, each value able to refer to earlier ones and to the
// service variables as $(NAME), then the service variables not set already.
func (r *Runner) env(ctx context.Context, p *corev1.Pod, sb *sandbox, c *corev1.Container) ([]string, error) {
	svc, err := r.serviceEnv(ctx, p)
	if err != nil {
		return nil, err
	}
	vars := make(map[string]string, len(svc))
	for k, v := range svc {
		vars[k] = v
	}
	var order []string
	declared := map[string]bool{}
	set := func(k, v string) {
		if !declared[k] {
			declared[k] = true
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, from := range c.EnvFrom {
		data, err := r.envFromSource(ctx, p.Namespace, from)
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			set(from.Prefix+k, v)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vars))
			continue
		}
		v, ok, err := r.envValueFrom(ctx, p, sb, c, e)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	for _, k := range sortedKeys(svc) {
		if !declared[k] {
			order = append(order, k)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

func (r *Runner) envFromSource(ctx context.Context, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := r.cfg.Lookup.ConfigMap(ctx, ns, from.ConfigMapRef.Name)
		if err != nil {
			if errors.Is(err, ErrRefNotFound) && optional(from.ConfigMapRef.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("envFrom configMap %s: %w", from.ConfigMapRef.Name, err)
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		s, err := r.cfg.Lookup.Secret(ctx, ns, from.SecretRef.Name)
		if err != nil {
			if errors.Is(err, ErrRefNotFound) && optional(from.SecretRef.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
		}
		out := make(map[string]string, len(s.Data)+len(s.StringData))
		for k, v := range s.Data {
			out[k] = string(v)
		}
		for k, v := range s.StringData {
			out[k] = v
		}
		return out, nil
	}
	return nil, nil
}

func optional(b *bool) bool { return b != nil && *b }

// envValueFrom resolves one valueFrom; ok is false for an optional key that is
// absent, which leaves the variable unset.
func (r *Runner) envValueFrom(ctx context.Context, p *corev1.Pod, sb *sandbox, c *corev1.Container, e corev1.EnvVar) (string, bool, error) {
	vf := e.ValueFrom
	switch {
	case vf.FieldRef != nil:
		v, err := fieldValue(p, sb, r.cfg.NodeName, r.cfg.HostIP, vf.FieldRef.FieldPath)
		return v, err == nil, err
	case vf.ResourceFieldRef != nil:
		v, err := resourceValue(c, vf.ResourceFieldRef)
		return v, err == nil, err
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		cm, err := r.cfg.Lookup.ConfigMap(ctx, p.Namespace, ref.Name)
		if err != nil {
			if errors.Is(err, ErrRefNotFound) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configMap %s: %w", ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok && !optional(ref.Optional) {
			return "", false, fmt.Errorf("configMap %s has no key %q", ref.Name, ref.Key)
		}
		return v, ok, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		s, err := r.cfg.Lookup.Secret(ctx, p.Namespace, ref.Name)
		if err != nil {
			if errors.Is(err, ErrRefNotFound) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %s: %w", ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if sv, sok := s.StringData[ref.Key]; sok {
				return sv, true, nil
			}
			if !optional(ref.Optional) {
				return "", false, fmt.Errorf("secret %s has no key %q", ref.Name, ref.Key)
			}
		}
		return string(v), ok, nil
	}
	return "", false, fmt.Errorf("valueFrom names no source")
}

// fieldValue is the downward API for env.
func fieldValue(p *corev1.Pod, sb *sandbox, node, hostIP, path string) (string, error) {
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "spec.nodeName":
		return node, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP":
		return sb.ip, nil
	case "status.podIPs":
		return sb.ip, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": p.Labels, "metadata.annotations": p.Annotations} {
		if rest, ok := strings.CutPrefix(path, prefix+"['"); ok {
			return m[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	res := c.Resources.Limits
	name, ok := strings.CutPrefix(ref.Resource, "limits.")
	if !ok {
		res = c.Resources.Requests
		name, ok = strings.CutPrefix(ref.Resource, "requests.")
	}
	if !ok {
		return "", fmt.Errorf("resourceFieldRef %q is not supported", ref.Resource)
	}
	q, ok := res[corev1.ResourceName(name)]
	if !ok {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		if name == "cpu" {
			return strconv.FormatInt((q.MilliValue()+999)/1000, 10), nil
		}
		return strconv.FormatInt(q.Value(), 10), nil
	}
	if name == "cpu" {
		return strconv.FormatInt((q.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10), nil
	}
	return strconv.FormatInt((q.Value()+divisor.Value()-1)/divisor.Value(), 10), nil
}

// expand replaces $(NAME) with the variable's value, as Kubernetes does:
// $$ is a literal $, and a reference to an unknown name stays as written.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func expandAll(in []string, vars map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, vars)
	}
	return out
}

// resources maps requests and limits to cgroup settings as the kubelet does:
// CPU requests to shares (1024 per CPU, at least 2), CPU limits to a CFS
// quota over a 100ms period (at least 1ms), memory limits to a hard limit.
func resources(rr corev1.ResourceRequirements) runtime.Resources {
	var out runtime.Resources
	cpuReq, hasReq := rr.Requests[corev1.ResourceCPU]
	cpuLim, hasLim := rr.Limits[corev1.ResourceCPU]
	if !hasReq && hasLim {
		cpuReq, hasReq = cpuLim, true // Kubernetes defaults requests to limits
	}
	if hasReq {
		out.CPUShares = uint64(max(cpuReq.MilliValue()*1024/1000, 2))
	}
	if hasLim {
		out.CPUPeriod = 100000
		out.CPUQuota = max(cpuLim.MilliValue()*100000/1000, 1000)
	}
	if mem, ok := rr.Limits[corev1.ResourceMemory]; ok {
		out.MemoryLimit = mem.Value()
	}
	return out
}

func security(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) runtime.Security {
	var out runtime.Security
	if pod != nil {
		out.RunAsUser, out.RunAsGroup = pod.RunAsUser, pod.RunAsGroup
	}
	if c == nil {
		return out
	}
	if c.RunAsUser != nil {
		out.RunAsUser = c.RunAsUser
	}
	if c.RunAsGroup != nil {
		out.RunAsGroup = c.RunAsGroup
	}
	out.ReadOnlyRootFS = c.ReadOnlyRootFilesystem != nil && *c.ReadOnlyRootFilesystem
	out.Privileged = c.Privileged != nil && *c.Privileged
	if c.Capabilities != nil {
		for _, cp := range c.Capabilities.Add {
			out.CapAdd = append(out.CapAdd, string(cp))
		}
		for _, cp := range c.Capabilities.Drop {
			out.CapDrop = append(out.CapDrop, string(cp))
		}
	}
	return out
}
