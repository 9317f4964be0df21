package apiserver_test

import (
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
