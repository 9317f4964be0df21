package apiserver_test

import (
	"errors"

	"github.com/keelson/keelson/apiserver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"testing"
	"time"

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

// eventually retries f until it returns nil, failing after 10 seconds with
// its last error.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, f)
}

// eventuallyWithin is eventually with its own deadline.
func eventuallyWithin(t testing.TB, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errNotYet is what an eventually's function returns while it waits.
var errNotYet = errors.New("not yet")

func resourceNamed(t testing.TB, name string) store.Resource {
	t.Helper()
	r, err := store.ResourceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
