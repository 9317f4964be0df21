package store

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Get reads one object into into, which must be a new, typed object of the
// kind wanted (&corev1.Pod{}); namespace is empty for cluster-scoped kinds.
// Errors: ErrNotFound, ErrCorrupt, ErrInvalid, ErrUnknownKind.
func (s *Store) Get(ctx context.Context, namespace, name string, into Object) (err error) {
	start := time.Now()
	defer func() { s.metrics.observe("get", start, err) }()
	r, err := ResourceOf(into)
	if err != nil {
		return err
	}
	key, err := s.key(r, namespace, name)
	if err != nil {
		return err
	}
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("get %s %s: %w", r, join(namespace, name), err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%s %s: %w", r, join(namespace, name), ErrNotFound)
	}
	kv := resp.Kvs[0]
	return s.cache.decodeInto(r, kv, into)
}

func join(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// ignoredForGeneration are the top-level fields whose changes do not bump
// metadata.generation, as in Kubernetes: everything else is the spec.
var ignoredForGeneration = map[string]bool{"metadata": true, "status": true, "apiVersion": true, "kind": true}

// specChanged reports whether two objects of one kind differ outside
// metadata and status, compared as Kubernetes compares specs for
// metadata.generation (apiequality.Semantic: 1000m is 1, an empty list is
// no list). Neither object is modified.
func specChanged(old, cur Object) bool {
	if u, ok := cur.(*unstructured.Unstructured); ok {
		o, ok := old.(*unstructured.Unstructured)
		if !ok {
			return true
		}
		for k, v := range u.Object {
			if !ignoredForGeneration[k] && !equality.Semantic.DeepEqual(o.Object[k], v) {
				return true
			}
		}
		for k, v := range o.Object {
			if _, ok := u.Object[k]; !ok && !ignoredForGeneration[k] && !equality.Semantic.DeepEqual(v, nil) {
				return true
			}
		}
		return false
	}
	a, b := reflect.ValueOf(old), reflect.ValueOf(cur)
	if a.Type() != b.Type() || a.Kind() != reflect.Pointer || a.Elem().Kind() != reflect.Struct {
		return true
	}
	a, b = a.Elem(), b.Elem()
	t := a.Type()
	for i := range t.NumField() {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !equality.Semantic.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			return true
		}
	}
	return false
}
