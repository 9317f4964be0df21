package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/agent/pod"
)

// apiLookup reads ConfigMaps and Secrets for pods' environments from the API.
type apiLookup struct{ client kubernetes.Interface }

func (l apiLookup) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	cm, err := l.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, pod.ErrRefNotFound)
	}
	return cm, err
}

func (l apiLookup) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s, err := l.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, pod.ErrRefNotFound)
	}
	return s, err
}
