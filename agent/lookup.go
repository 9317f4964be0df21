package agent

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/agent/pod"
)

// apiLookup reads ConfigMaps and Secrets for pods' environments from the API,
// and Services from the agent's informer of them.
type apiLookup struct {
	client   kubernetes.Interface
	services listerscorev1.ServiceLister
	synced   cache.InformerSynced
}

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

// Services waits, the first time, for the informer's first list: a container
// started before it would miss the variables of services that exist.
func (l apiLookup) Services(ctx context.Context, ns string) ([]*corev1.Service, error) {
	if !l.synced() && !cache.WaitForCacheSync(ctx.Done(), l.synced) {
		return nil, errors.New("services not listed yet")
	}
	return l.services.Services(ns).List(labels.Everything())
}
