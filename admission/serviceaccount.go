package admission

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/keelson/keelson/store"
)

// What a pod's ServiceAccount gives it, by Kubernetes' names.
const (
	// DefaultServiceAccount is the ServiceAccount of pods that name none;
	// keelson makes it in every namespace.
	DefaultServiceAccount = "default"
	// ServiceAccountMountPath is where containers find the token, the CA
	// and the namespace, and where client-go's in-cluster config reads them.
	ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// APIAccessVolumePrefix starts the name of the volume holding them.
	APIAccessVolumePrefix = "kube-api-access-"
	// RootCAConfigMap is the ConfigMap of every namespace holding the API's
	// CA (ca.crt), which keelson publishes.
	RootCAConfigMap = "kube-root-ca.crt"
	// tokenExpirationSeconds is the lifetime the volume asks for, as
	// Kubernetes' (an hour and seven seconds); the agent renews the token
	// well before it ends.
	tokenExpirationSeconds = 3607
)

// serviceAccounts reads each ServiceAccount a transaction's pods name once,
// as the transaction leaves it.
type serviceAccounts struct {
	a       *Admission
	written map[string]*corev1.ServiceAccount
	read    map[string]*corev1.ServiceAccount // nil value: none stored
}

func (s *serviceAccounts) get(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	key := ns + "/" + name
	if sa, ok := s.written[key]; ok {
		return sa, nil
	}
	if sa, ok := s.read[key]; ok {
		return sa, nil
	}
	sa := &corev1.ServiceAccount{}
	err := s.a.st.Get(ctx, ns, name, sa)
	switch {
	case errors.Is(err, store.ErrNotFound):
		sa = nil
	case err != nil:
		return nil, fmt.Errorf("admission: ServiceAccount %s: %w", key, err)
	}
	if s.read == nil {
		s.read = map[string]*corev1.ServiceAccount{}
	}
	s.read[key] = sa
	return sa, nil
}

// mountServiceAccount does for a created pod what Kubernetes' ServiceAccount
// admission does: it names the default ServiceAccount when the pod names
// none, and, unless the pod or its ServiceAccount turns automounting off,
// adds the kube-api-access volume (a token bound to the pod, the API's CA,
// the namespace) mounted read-only in every container at
// ServiceAccountMountPath. A ServiceAccount that does not exist yet is no
// error: it may come from Git in a later transaction, and the agent waits
// for it before the pod starts.
func mountServiceAccount(ctx context.Context, p *corev1.Pod, sas *serviceAccounts) error {
	if p.Spec.ServiceAccountName == "" {
		p.Spec.ServiceAccountName = cmp.Or(p.Spec.DeprecatedServiceAccount, DefaultServiceAccount)
	}
	p.Spec.DeprecatedServiceAccount = p.Spec.ServiceAccountName
	if off := p.Spec.AutomountServiceAccountToken; off != nil && !*off || mountsServiceAccountPath(p) {
		return nil
	}
	sa, err := sas.get(ctx, p.Namespace, p.Spec.ServiceAccountName)
	if err != nil {
		return err
	}
	if p.Spec.AutomountServiceAccountToken == nil && sa != nil && sa.AutomountServiceAccountToken != nil && !*sa.AutomountServiceAccountToken {
		return nil
	}
	name := APIAccessVolumePrefix + utilrand.String(5)
	p.Spec.Volumes = append(p.Spec.Volumes, APIAccessVolume(name))
	mount := corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: ServiceAccountMountPath}
	for i := range p.Spec.InitContainers {
		p.Spec.InitContainers[i].VolumeMounts = append(p.Spec.InitContainers[i].VolumeMounts, mount)
	}
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].VolumeMounts = append(p.Spec.Containers[i].VolumeMounts, mount)
	}
	return nil
}

// mountsServiceAccountPath: a pod that mounts something of its own where
// the token goes keeps it.
func mountsServiceAccountPath(p *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				if m.MountPath == ServiceAccountMountPath {
					return true
				}
			}
		}
	}
	return false
}

// APIAccessVolume is the projected volume of the pod's token, the API's CA
// and its namespace, as Kubernetes makes it.
func APIAccessVolume(name string) corev1.Volume {
	mode := int32(0o644)
	exp := int64(tokenExpirationSeconds)
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: &exp, Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}
