package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// crdResource is the resource of CustomResourceDefinitions, whose objects
// register the custom resources below.
var crdResource = res(apiextensionsv1.GroupName, "v1", "CustomResourceDefinition", "customresourcedefinitions", false, "crd", "crds")

func init() {
	// CRDs are encoded and decoded like the built-in kinds, through
	// client-go's scheme.
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme.Scheme))
}

// customRegistry holds the resources that CRDs define, which exist only at
// run time. The built-in lookups never take its lock: it is asked only when
// they miss.
type customRegistry struct {
	mu       sync.RWMutex
	byGVK    map[schema.GroupVersionKind]Resource
	byPlural map[string]Resource
	crds     map[string]*apiextensionsv1.CustomResourceDefinition // by group resource
}

var custom = &customRegistry{
	byGVK:    map[schema.GroupVersionKind]Resource{},
	byPlural: map[string]Resource{},
	crds:     map[string]*apiextensionsv1.CustomResourceDefinition{},
}

// CustomResourceOf returns the resource a CRD defines: its storage version's
// group, version and kind, its plural and scope. Objects of its other served
// versions are stored under it, their apiVersion set to the storage version's
// (no conversion: the versions must share one schema, as with the
// conversion strategy None).
func CustomResourceOf(crd *apiextensionsv1.CustomResourceDefinition) (Resource, error) {
	sp := &crd.Spec
	for _, v := range sp.Versions {
		if v.Storage {
			r := res(sp.Group, v.Name, sp.Names.Kind, sp.Names.Plural, sp.Scope == apiextensionsv1.NamespaceScoped, sp.Names.ShortNames...)
			return r, nil
		}
	}
	return Resource{}, fmt.Errorf("%w: CustomResourceDefinition %s has no storage version", ErrInvalid, crd.Name)
}

// RegisterCustom makes the resource a CRD defines known to the store, the
// API and every lookup of this process, replacing what an earlier version of
// the same CRD registered. A CRD that would shadow a built-in kind is
// refused with ErrInvalid.
func RegisterCustom(crd *apiextensionsv1.CustomResourceDefinition) error {
	r, err := CustomResourceOf(crd)
	if err != nil {
		return err
	}
	if _, ok := byPlural[r.GroupResource()]; ok {
		return fmt.Errorf("%w: CustomResourceDefinition %s names built-in resource %s", ErrInvalid, crd.Name, r)
	}
	for _, v := range crd.Spec.Versions {
		if _, ok := byGVK[r.GVK.GroupKind().WithVersion(v.Name)]; ok {
			return fmt.Errorf("%w: CustomResourceDefinition %s defines built-in kind %s/%s", ErrInvalid, crd.Name, v.Name, r.GVK.Kind)
		}
	}
	custom.mu.Lock()
	defer custom.mu.Unlock()
	custom.removeLocked(r.GroupResource())
	custom.byPlural[r.GroupResource()] = r
	custom.crds[r.GroupResource()] = crd.DeepCopy()
	for _, v := range crd.Spec.Versions {
		if v.Served || v.Storage {
			custom.byGVK[r.GVK.GroupKind().WithVersion(v.Name)] = r
		}
	}
	return nil
}

// UnregisterCustom forgets the resource of the CRD named name
// (<plural>.<group>); objects of it can no longer be read.
func UnregisterCustom(name string) {
	custom.mu.Lock()
	defer custom.mu.Unlock()
	custom.removeLocked(strings.ToLower(name))
}

func (c *customRegistry) removeLocked(groupResource string) {
	r, ok := c.byPlural[groupResource]
	if !ok {
		return
	}
	for g, cr := range c.byGVK {
		if cr.GroupResource() == r.GroupResource() {
			delete(c.byGVK, g)
		}
	}
	delete(c.byPlural, groupResource)
	delete(c.crds, groupResource)
}

// CustomResources returns the resources registered from CRDs, sorted by
// group resource.
func CustomResources() []Resource {
	custom.mu.RLock()
	out := make([]Resource, 0, len(custom.byPlural))
	for _, r := range custom.byPlural {
		out = append(out, r)
	}
	custom.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GroupResource() < out[j].GroupResource() })
	return out
}

// CustomDefinition returns the CRD that registered r, which the caller must
// not modify, and whether r is a custom resource.
func CustomDefinition(r Resource) (*apiextensionsv1.CustomResourceDefinition, bool) {
	custom.mu.RLock()
	defer custom.mu.RUnlock()
	crd, ok := custom.crds[r.GroupResource()]
	return crd, ok
}

// IsCustom reports whether r is a custom resource, defined by a CRD.
func IsCustom(r Resource) bool {
	_, ok := CustomDefinition(r)
	return ok
}

func customByGVK(gvk schema.GroupVersionKind) (Resource, bool) {
	custom.mu.RLock()
	defer custom.mu.RUnlock()
	r, ok := custom.byGVK[gvk]
	return r, ok
}

func customByName(groupResource string) (Resource, bool) {
	custom.mu.RLock()
	defer custom.mu.RUnlock()
	r, ok := custom.byPlural[groupResource]
	return r, ok
}

// newCustom is Resource.New for a kind the scheme does not know: custom
// resources are held as unstructured objects. A Resource comes from a
// lookup, so a kind the scheme lacks is a custom resource's even when its
// CRD was forgotten since; it needs a kind, like any object.
func newCustom(r Resource) (Object, error) {
	if r.GVK.Kind == "" || r.GVK.Version == "" {
		return nil, fmt.Errorf("%w: %s", ErrUnknownKind, r.GVK)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.GVK)
	return u, nil
}

// LoadCustomResources registers the resources of every CRD in etcd, and
// forgets those registered for CRDs no longer there: what a process does on
// start, before it serves or syncs custom resources. It returns the CRDs it
// read, which the caller may keep but not modify.
func (s *Store) LoadCustomResources(ctx context.Context) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	l, err := s.List(ctx, crdResource, ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("load custom resource definitions: %w", err)
	}
	keep := map[string]bool{}
	crds := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(l.Items))
	for _, o := range l.Items {
		crd := o.(*apiextensionsv1.CustomResourceDefinition)
		crds = append(crds, crd)
		if err := RegisterCustom(crd); err != nil {
			s.log.Warn("custom resource definition not registered", "crd", crd.Name, "err", err)
			continue
		}
		keep[strings.ToLower(crd.Name)] = true
	}
	for _, r := range CustomResources() {
		if !keep[r.GroupResource()] {
			UnregisterCustom(r.GroupResource())
		}
	}
	return crds, nil
}

// noteCustom keeps the registry in step with the CRDs a transaction wrote or
// deleted.
func (s *Store) noteCustom(ps []*prepared) {
	for _, p := range ps {
		if p.op.res.GVK != crdResource.GVK {
			continue
		}
		if p.op.kind == opDelete {
			UnregisterCustom(p.op.name)
			continue
		}
		if crd, ok := p.op.obj.(*apiextensionsv1.CustomResourceDefinition); ok {
			if err := RegisterCustom(crd); err != nil {
				s.log.Warn("custom resource definition not registered", "crd", crd.Name, "err", err)
			}
		}
	}
}

// registerOps registers the CRDs a transaction creates or updates before it
// prepares its ops, so that objects of their kinds can be written in the same
// transaction. The returned func puts the registry back as it was, for a
// transaction that fails.
func registerOps(ops []Op) (undo func()) {
	type before struct {
		name string
		crd  *apiextensionsv1.CustomResourceDefinition // nil: not registered
	}
	var prev []before
	for _, op := range ops {
		crd, ok := op.obj.(*apiextensionsv1.CustomResourceDefinition)
		if !ok || op.kind == opDelete {
			continue
		}
		r, err := CustomResourceOf(crd)
		if err != nil {
			continue
		}
		old, _ := CustomDefinition(r)
		if RegisterCustom(crd) == nil {
			prev = append(prev, before{r.GroupResource(), old})
		}
	}
	return func() {
		for _, p := range prev {
			if p.crd == nil {
				UnregisterCustom(p.name)
			} else if err := RegisterCustom(p.crd); err != nil {
				UnregisterCustom(p.name)
			}
		}
	}
}
