package pod

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/agent/registry"
)

// pullCredentials are the credentials a pull of image presents: those of
// the pod's imagePullSecrets, then of its ServiceAccount's (which
// Kubernetes' admission copies into the pod; keelson has no admission, so
// the node reads them at pull time). A secret that does not exist is
// skipped with an event, as the kubelet does; one the API cannot give now
// fails the pull, to be tried again.
func (r *Runner) pullCredentials(ctx context.Context, p *corev1.Pod, image string) ([]registry.Credential, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return nil, err
	}
	names, err := r.pullSecretNames(ctx, p)
	if err != nil {
		return nil, err
	}
	var ring registry.Keyring
	for _, name := range names {
		s, err := r.cfg.Lookup.Secret(ctx, p.Namespace, name)
		if errors.Is(err, ErrRefNotFound) {
			r.recordf(p, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
				fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", name))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read image pull secret %s/%s: %w", p.Namespace, name, err)
		}
		from := p.Namespace + "/" + name
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			err = ring.AddDockerConfigJSON(s.Data[corev1.DockerConfigJsonKey], from)
		case corev1.SecretTypeDockercfg:
			err = ring.AddDockerCfg(s.Data[corev1.DockerConfigKey], from)
		default:
			err = fmt.Errorf("image pull secret %s is of type %q, not %s", from, s.Type, corev1.SecretTypeDockerConfigJson)
		}
		if err != nil {
			r.recordf(p, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret", err.Error())
		}
	}
	return ring.Lookup(reference.Domain(named), reference.Path(named)), nil
}

// pullSecretNames are the pod's image pull secrets, then its
// ServiceAccount's, each once.
func (r *Runner) pullSecretNames(ctx context.Context, p *corev1.Pod) ([]string, error) {
	var names []string
	for _, ref := range p.Spec.ImagePullSecrets {
		names = append(names, ref.Name)
	}
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	acct, err := r.cfg.Lookup.ServiceAccount(ctx, p.Namespace, sa)
	switch {
	case errors.Is(err, ErrRefNotFound):
	case err != nil:
		return nil, fmt.Errorf("read service account %s/%s: %w", p.Namespace, sa, err)
	default:
		for _, ref := range acct.ImagePullSecrets {
			names = append(names, ref.Name)
		}
	}
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
