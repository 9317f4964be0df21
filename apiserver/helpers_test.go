package apiserver_test

import (
	"errors"

	"github.com/keelson/keelson/apiserver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"testing"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/keelson/keelson/store"
)

type kubernetesInterface = kubernetes.Interface

func fieldsEverything() fields.Selector { return fields.Everything() }

// unsupported marks a ListWatch as not supporting watch-list semantics, so the
// reflector lists and then watches.
type unsupported struct{}

func (unsupported) IsWatchListSemanticsUnSupported() bool { return true }

func podsRes(t *testing.T) store.Resource {
	t.Helper()
	r, err := store.ResourceByName("pods")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type configT = apiserver.Config

// statusOf maps a store error to the API error a client would see.
func statusOf(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierrors.NewNotFound(schema.GroupResource{}, "")
	}
	return err
}
