package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/agent/pod"
)

// servicesSyncWait bounds how long a container's start waits for the first
// list of Services.
const servicesSyncWait = 5 * time.Second

// apiLookup reads ConfigMaps, Secrets, claims and volumes for pods'
// environments and volumes through the agent's watches of them (an
// objectCache), Services from the agent's informer of them, and asks the API
// for the pods' service account tokens and accounts.
type apiLookup struct {
	client   kubernetes.Interface
	objects  *objectCache
	services listerscorev1.ServiceLister
	synced   cache.InformerSynced
	// syncWait is servicesSyncWait; tests shorten it.
	syncWait time.Duration
}

func (l apiLookup) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return lookupAs[*corev1.ConfigMap](ctx, l.objects, objectRef{configMapKind, ns, name}, "configmap")
}

func (l apiLookup) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return lookupAs[*corev1.Secret](ctx, l.objects, objectRef{secretKind, ns, name}, "secret")
}

func (l apiLookup) ServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	a, err := l.client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("serviceaccount %s/%s: %w", ns, name, pod.ErrRefNotFound)
	}
	return a, err
}

func (l apiLookup) Claim(ctx context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	return lookupAs[*corev1.PersistentVolumeClaim](ctx, l.objects, objectRef{claimKind, ns, name}, "persistentvolumeclaim")
}

func (l apiLookup) Volume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	return lookupAs[*corev1.PersistentVolume](ctx, l.objects, objectRef{volumeKind, "", name}, "persistentvolume")
}

// lookupAs reads ref through the cache, as T, with ErrRefNotFound when it
// does not exist.
func lookupAs[T runtime.Object](ctx context.Context, c *objectCache, ref objectRef, what string) (T, error) {
	var zero T
	obj, err := c.get(ctx, ref)
	if apierrors.IsNotFound(err) {
		if ref.namespace == "" {
			return zero, fmt.Errorf("%s %s: %w", what, ref.name, pod.ErrRefNotFound)
		}
		return zero, fmt.Errorf("%s %s/%s: %w", what, ref.namespace, ref.name, pod.ErrRefNotFound)
	}
	if err != nil {
		return zero, err
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("%s %s: the API answered a %T", what, ref.name, obj)
	}
	return t, nil
}

// ServiceAccountToken asks the API for a token of the pod's ServiceAccount
// ("default" when it names none) bound to the pod. The server may shorten
// expirationSeconds; the expiry it answers is the token's.
func (l apiLookup) ServiceAccountToken(ctx context.Context, p *corev1.Pod, audiences []string, expirationSeconds int64) (string, time.Time, error) {
	sa := cmp.Or(p.Spec.ServiceAccountName, "default")
	tr, err := l.client.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         audiences,
			ExpirationSeconds: &expirationSeconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token of serviceaccount %s/%s: %w", p.Namespace, sa, err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

// Services waits a moment, the first time, for the informer's first list: a
// container started before it would miss the variables of services that
// exist. Past syncWait it fails, as the kubelet does: the container waits
// (CreateContainerConfigError) and is tried again, rather than holding a pod
// worker for as long as the API is away.
func (l apiLookup) Services(ctx context.Context, ns string) ([]*corev1.Service, error) {
	if !l.synced() {
		wait, cancel := context.WithTimeout(ctx, l.syncWait)
		defer cancel()
		if !cache.WaitForCacheSync(wait.Done(), l.synced) {
			return nil, errors.New("the services are not listed yet, so their environment variables are not known")
		}
	}
	return l.services.Services(ns).List(labels.Everything())
}
