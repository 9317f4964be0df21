package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// key returns the etcd key of one object: <prefix>/<resource>/<namespace>/<name>,
// or <prefix>/<resource>/<name> for cluster-scoped kinds.
func (s *Store) key(r Resource, namespace, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: %s: name is empty", ErrInvalid, r)
	}
	if err := checkSegment("name", name); err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	if !r.Namespaced {
		if namespace != "" {
			return "", fmt.Errorf("%w: %s is cluster-scoped, got namespace %q", ErrInvalid, r, namespace)
		}
		return s.prefix + "/" + r.GroupResource() + "/" + name, nil
	}
	if namespace == "" {
		return "", fmt.Errorf("%w: %s %s: namespace is empty", ErrInvalid, r, name)
	}
	if err := checkSegment("namespace", namespace); err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	return s.prefix + "/" + r.GroupResource() + "/" + namespace + "/" + name, nil
}

// checkSegment keeps names that would break the key layout out of etcd. Full
// name validation is the schema's job; this only guards the storage layout.
func checkSegment(what, v string) error {
	if strings.ContainsAny(v, "/\x00") || v == "." || v == ".." || len(v) > validation.DNS1123SubdomainMaxLength {
		return fmt.Errorf("%w: %s %q cannot be stored", ErrInvalid, what, v)
	}
	return nil
}

// rangePrefix is the key prefix of every object of r, in one namespace when
// namespace is set.
func (s *Store) rangePrefix(r Resource, namespace string) string {
	if r.Namespaced && namespace != "" {
		return s.prefix + "/" + r.GroupResource() + "/" + namespace + "/"
	}
	return s.prefix + "/" + r.GroupResource() + "/"
}

// encode writes obj as the JSON value stored in etcd, with its apiVersion and
// kind set so the value stands on its own.
func encode(r Resource, obj Object) ([]byte, error) {
	obj.GetObjectKind().SetGroupVersionKind(r.GVK)
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", r, obj.GetName(), err)
	}
	return b, nil
}

// decode reads a stored value into a new object of r and sets its
// resourceVersion to the key's mod revision.
func decode(r Resource, key, value []byte, modRevision int64) (Object, error) {
	obj, err := r.New()
	if err != nil {
		return nil, err
	}
	if err := decodeInto(r, key, value, modRevision, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func decodeInto(r Resource, key, value []byte, modRevision int64, obj Object) error {
	reflect.ValueOf(obj).Elem().SetZero()
	if err := json.Unmarshal(value, obj); err != nil {
		return fmt.Errorf("%w: key %s: %v", ErrCorrupt, key, err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk != r.GVK {
		return fmt.Errorf("%w: key %s holds %q %q, want %s", ErrCorrupt, key, gvk.GroupVersion().String(), gvk.Kind, r.GVK)
	}
	obj.SetResourceVersion(formatRV(modRevision))
	return nil
}
