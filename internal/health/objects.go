package health

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/keelson/keelson/store"
)

// ObjectRef names one object a Git source declared.
type ObjectRef struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
}

// ObjectHealth is the health of one declared object.
type ObjectHealth struct {
	Ref ObjectRef
	Health
}

// OfObjects reads each declared object from the store and computes its
// health (Missing when absent), and the roll-up of them all: what a
// source's Sync status shows beside Ready. Errors: those of store.Get other
// than store.ErrNotFound, and store.ErrUnknownKind.
func OfObjects(ctx context.Context, st *store.Store, refs []ObjectRef) (Health, []ObjectHealth, error) {
	out := make([]ObjectHealth, 0, len(refs))
	all := make([]Health, 0, len(refs))
	for _, ref := range refs {
		r, err := store.ResourceFor(ref.GVK)
		if err != nil {
			return Health{}, nil, err
		}
		obj, err := r.New()
		if err != nil {
			return Health{}, nil, err
		}
		var h Health
		switch err := st.Get(ctx, ref.Namespace, ref.Name, obj); {
		case errors.Is(err, store.ErrNotFound):
			h = OfKind(r.GVK.GroupKind(), nil)
		case err != nil:
			return Health{}, nil, fmt.Errorf("health of %s %s/%s: %w", ref.GVK.Kind, ref.Namespace, ref.Name, err)
		default:
			h = OfKind(r.GVK.GroupKind(), obj)
		}
		out = append(out, ObjectHealth{Ref: ref, Health: h})
		all = append(all, h)
	}
	return RollUp(all...), out, nil
}
