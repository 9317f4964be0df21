package reconciler

import (
	"context"
	"errors"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keelson/keelson/admission"
	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/rbac"
	"github.com/keelson/keelson/store"
)

// ServiceAccountOptions tune what every namespace gets for its pods' API
// access.
type ServiceAccountOptions struct {
	// RootCA is the API's CA certificate (PEM), published in every
	// namespace as the kube-root-ca.crt ConfigMap that pods' token volumes
	// read; empty when the API serves no TLS.
	RootCA []byte
}

// rbacDefaultsKey is the ServiceAccount controller's key for the default
// ClusterRoles and their bindings; no namespace is named so.
const rbacDefaultsKey = "/rbac-defaults"

// ServiceAccountController gives every namespace what Kubernetes'
// ServiceAccount and root CA publisher controllers give it: the default
// ServiceAccount and the kube-root-ca.crt ConfigMap, in namespaces that
// exist as objects or hold pods, and none being deleted. It also keeps
// RBAC's default ClusterRoles and ClusterRoleBindings (view, cluster-admin,
// system:public-info-viewer, …), marked as the control plane's, so that
// kubectl shows them and Git cannot take them over.
type ServiceAccountController struct {
	*Controller
	st                    *store.Store
	opts                  ServiceAccountOptions
	nss, pods, sas, cms   cache.SharedIndexInformer
	clusterRoles, binding cache.SharedIndexInformer
}

// NewServiceAccountController returns the controller, registered on the
// informers.
func NewServiceAccountController(st *store.Store, inf *Informers, opts ServiceAccountOptions, qopts QueueOptions, log *slog.Logger) *ServiceAccountController {
	c := &ServiceAccountController{st: st, opts: opts,
		nss: inf.For(store.MustResource("namespaces")), pods: inf.For(store.MustResource("pods")),
		sas: inf.For(store.MustResource("serviceaccounts")), cms: inf.For(store.MustResource("configmaps")),
		clusterRoles: inf.For(store.MustResource("clusterroles.rbac.authorization.k8s.io")),
		binding:      inf.For(store.MustResource("clusterrolebindings.rbac.authorization.k8s.io")),
	}
	c.Controller = NewController("serviceaccount", c, qopts, log)
	c.nss.AddEventHandler(c.Handler(SelfKeys))
	c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok {
			c.Enqueue(p.Namespace)
		}
	}})
	c.sas.AddEventHandler(c.Handler(namedKeys(admission.DefaultServiceAccount)))
	c.cms.AddEventHandler(c.Handler(namedKeys(admission.RootCAConfigMap)))
	defaults := c.Handler(func(any) []string { return []string{rbacDefaultsKey} })
	c.clusterRoles.AddEventHandler(defaults)
	c.binding.AddEventHandler(defaults)
	return c
}

// namedKeys enqueues the namespace of the objects named name.
func namedKeys(name string) func(obj any) []string {
	return func(obj any) []string {
		m, err := metaOf(obj)
		if err != nil || m.GetName() != name {
			return nil
		}
		return []string{m.GetNamespace()}
	}
}

// Run keeps the RBAC defaults from the start, then every namespace.
func (c *ServiceAccountController) Run(ctx context.Context) {
	c.Enqueue(rbacDefaultsKey)
	c.Controller.Run(ctx)
}

// Reconcile makes a namespace's default ServiceAccount and root CA
// ConfigMap, or the RBAC defaults.
func (c *ServiceAccountController) Reconcile(ctx context.Context, key string) (Result, error) {
	if key == rbacDefaultsKey {
		return Result{}, c.keepRBACDefaults(ctx)
	}
	ns, ok := GetCached[*corev1.Namespace](c.nss, "", key)
	if ok && ns.DeletionTimestamp != nil {
		return Result{}, nil
	}
	if !ok {
		if pods, _ := c.pods.GetIndexer().ByIndex(IndexNamespace, key); len(pods) == 0 {
			return Result{}, nil
		}
	}
	if _, ok := GetCached[*corev1.ServiceAccount](c.sas, key, admission.DefaultServiceAccount); !ok {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: key, Name: admission.DefaultServiceAccount}}
		if err := c.st.Create(ctx, sa); err != nil && !errors.Is(err, store.ErrExists) {
			return Result{}, err
		}
	}
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: key, Name: admission.RootCAConfigMap,
			Labels: map[string]string{keelsonv1alpha1.LabelControlPlane: "true"}},
		Data: map[string]string{"ca.crt": string(c.opts.RootCA)},
	}
	cur, ok := GetCached[*corev1.ConfigMap](c.cms, key, admission.RootCAConfigMap)
	switch {
	case !ok:
		if err := c.st.Create(ctx, want); err != nil && !errors.Is(err, store.ErrExists) {
			return Result{}, err
		}
	case !equality.Semantic.DeepEqual(cur.Data, want.Data) || cur.Labels[keelsonv1alpha1.LabelControlPlane] != "true":
		up := cur.DeepCopy()
		up.Data, up.BinaryData = want.Data, nil
		if up.Labels == nil {
			up.Labels = map[string]string{}
		}
		up.Labels[keelsonv1alpha1.LabelControlPlane] = "true"
		if err := c.st.Update(ctx, up); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return Result{}, err
		}
	}
	return Result{}, nil
}

// keepRBACDefaults makes the default ClusterRoles and ClusterRoleBindings
// as rbac.DefaultClusterRoles says, and puts back one that changed. An
// object of the same name that is not the control plane's (made before,
// outside it) is left alone: the policy takes it as it is.
func (c *ServiceAccountController) keepRBACDefaults(ctx context.Context) error {
	var errs []error
	for _, want := range rbac.DefaultClusterRoles() {
		cur, ok := GetCached[*rbacv1.ClusterRole](c.clusterRoles, "", want.Name)
		errs = append(errs, c.keepDefault(ctx, want, cur, ok, func() bool {
			return equality.Semantic.DeepEqual(cur.Rules, want.Rules) && equality.Semantic.DeepEqual(cur.AggregationRule, want.AggregationRule)
		}))
	}
	for _, want := range rbac.DefaultClusterRoleBindings() {
		cur, ok := GetCached[*rbacv1.ClusterRoleBinding](c.binding, "", want.Name)
		errs = append(errs, c.keepDefault(ctx, want, cur, ok, func() bool {
			return equality.Semantic.DeepEqual(cur.Subjects, want.Subjects) && cur.RoleRef == want.RoleRef
		}))
	}
	return errors.Join(errs...)
}

// keepDefault creates want, or updates cur to it when cur is the control
// plane's and not the same.
func (c *ServiceAccountController) keepDefault(ctx context.Context, want, cur store.Object, exists bool, same func() bool) error {
	labels := want.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[keelsonv1alpha1.LabelControlPlane] = "true"
	want.SetLabels(labels)
	if !exists {
		if err := c.st.Create(ctx, want); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
		return nil
	}
	if cur.GetLabels()[keelsonv1alpha1.LabelControlPlane] != "true" || same() {
		return nil
	}
	want.SetResourceVersion(cur.GetResourceVersion())
	want.SetUID(cur.GetUID())
	want.SetCreationTimestamp(cur.GetCreationTimestamp())
	if err := c.st.Update(ctx, want); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
