package reconciler

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/util/intstr"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/reconciler/fakenode"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

type testEnv struct {
	t  *testing.T
	st *store.Store
}

func newTestEnv(t *testing.T) *testEnv { return newTestEnvWith(t, fakenode.Options{}) }

func newTestEnvWith(t *testing.T, node fakenode.Options) *testEnv {
	st := etcdtest.NewStore(t)
	startFakeNode(t, st, node)
	startControllers(t, st, testOptions())
	return &testEnv{t: t, st: st}
}

// update writes obj's spec, retrying on conflicts with the controllers'
// status writes by re-reading and reapplying.
func (e *testEnv) update(obj store.Object) error {
	for range 20 {
		cur := obj.DeepCopyObject().(store.Object)
		fresh := obj.DeepCopyObject().(store.Object)
		if err := e.st.Get(e.t.Context(), obj.GetNamespace(), obj.GetName(), fresh); err != nil {
			return err
		}
		cur.SetResourceVersion(fresh.GetResourceVersion())
		copyStatus(cur, fresh)
		if err := e.st.Update(e.t.Context(), cur); err == nil {
			return nil
		}
	}
	return fmt.Errorf("update %s: too many conflicts", obj.GetName())
}

func (e *testEnv) getRS(name string) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{}
	if err := e.st.Get(e.t.Context(), "default", name, rs); err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func statusString(s appsv1.ReplicaSetStatus) string {
	return fmt.Sprintf("replicas=%d labeled=%d ready=%d available=%d observed=%d",
		s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration)
}

// copyStatus keeps the stored status: a spec writer (Git) never writes it.
func copyStatus(dst, src store.Object) {
	d := reflect.ValueOf(dst).Elem().FieldByName("Status")
	if d.IsValid() {
		d.Set(reflect.ValueOf(src).Elem().FieldByName("Status"))
	}
}

func storeListNS(ns string) store.ListOptions { return store.ListOptions{Namespace: ns} }

func intOrStr(n int32) intstr.IntOrString { return intstr.FromInt32(n) }

// fakenodeRefusing is a fake node on which pods of image never become ready.
func fakenodeRefusing(image string) fakenode.Options {
	return fakenode.Options{Ready: func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image != image }}
}

// getDefault reads the object name of namespace default into obj, failing
// the test when it cannot.
func getDefault[T store.Object](e *testEnv, name string, obj T) T {
	e.t.Helper()
	if err := e.st.Get(e.t.Context(), "default", name, obj); err != nil {
		e.t.Fatal(err)
	}
	return obj
}
