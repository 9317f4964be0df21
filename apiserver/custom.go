package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/jsonpath"

	"github.com/keelson/keelson/store"
)

// servedResources is every resource the API serves: the built-in ones, then
// those CRDs define, which come and go while the server runs.
func servedResources() []store.Resource {
	return append(store.Resources(), store.CustomResources()...)
}

// watchCustom keeps the process's registry of custom resources in step with
// the CRDs in the store, so that a CRD written by another process is served
// without a restart. It returns when ctx ends.
func (s *Server) watchCustom(ctx context.Context) {
	crds, err := store.ResourceByName("customresourcedefinitions.apiextensions.k8s.io")
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		if err := s.followCRDs(ctx, crds); err != nil && ctx.Err() == nil {
			s.log.Warn("watch of custom resource definitions ended; starting again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Server) followCRDs(ctx context.Context, crds store.Resource) error {
	if _, err := s.cfg.Store.LoadCustomResources(ctx); err != nil {
		return err
	}
	l, err := s.cfg.Store.List(ctx, crds, store.ListOptions{})
	if err != nil {
		return err
	}
	w, err := s.cfg.Store.Watch(ctx, crds, store.WatchOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Added, watch.Modified:
			if crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition); ok {
				if err := store.RegisterCustom(crd); err != nil {
					s.log.Warn("custom resource definition not served", "crd", crd.Name, "err", err)
				}
			}
		case watch.Deleted:
			if crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition); ok {
				store.UnregisterCustom(crd.Name)
			}
		case watch.Error:
			return store.WatchError(ev)
		}
	}
	return errors.New("watch closed")
}

// customColumns are the Table columns of a custom resource: NAME, the CRD's
// additionalPrinterColumns of the served version, and AGE, as kubectl shows
// them for CRDs on any cluster.
func customColumns(res store.Resource) ([]column, bool) {
	crd, ok := store.CustomDefinition(res)
	if !ok {
		return nil, false
	}
	cols := []column{nameCol}
	for _, v := range crd.Spec.Versions {
		if v.Name != res.GVK.Version {
			continue
		}
		for _, pc := range v.AdditionalPrinterColumns {
			cols = append(cols, printerColumn(pc))
		}
	}
	return append(cols, ageCol), true
}

func printerColumn(pc apiextensionsv1.CustomResourceColumnDefinition) column {
	jp := jsonpath.New(pc.Name).AllowMissingKeys(true)
	parseErr := jp.Parse("{" + pc.JSONPath + "}")
	typ := pc.Type
	if typ == "date" {
		typ = "string" // shown as an age, like the AGE column
	}
	return column{name: pc.Name, typ: typ, priority: pc.Priority, cell: func(o store.Object) any {
		u, ok := o.(*unstructured.Unstructured)
		if !ok || parseErr != nil {
			return nil
		}
		results, err := jp.FindResults(u.Object)
		if err != nil || len(results) == 0 || len(results[0]) == 0 {
			return nil
		}
		v := results[0][0].Interface()
		if pc.Type == "date" {
			if t, err := time.Parse(time.RFC3339, fmt.Sprint(v)); err == nil {
				return age(metav1.NewTime(t))
			}
		}
		if pc.Type == "integer" {
			if n, ok := v.(int64); ok {
				return n
			}
		}
		if pc.Type == "string" {
			var b bytes.Buffer
			fmt.Fprint(&b, v)
			return b.String()
		}
		return v
	}}
}

// objectMeta is the metadata of any stored object, typed or unstructured.
func objectMeta(o store.Object) metav1.ObjectMeta {
	if a, ok := o.(metav1.ObjectMetaAccessor); ok {
		if m, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return *m
		}
	}
	return metav1.ObjectMeta{
		Name: o.GetName(), Namespace: o.GetNamespace(), UID: o.GetUID(), ResourceVersion: o.GetResourceVersion(),
		Generation: o.GetGeneration(), CreationTimestamp: o.GetCreationTimestamp(), DeletionTimestamp: o.GetDeletionTimestamp(),
		Labels: o.GetLabels(), Annotations: o.GetAnnotations(), OwnerReferences: o.GetOwnerReferences(), Finalizers: o.GetFinalizers(),
	}
}
