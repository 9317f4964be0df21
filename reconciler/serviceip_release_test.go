package reconciler

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// changeService rewrites a service's spec as a new commit would (keeping
// what the allocator filled, as gitsync does), retrying on conflicts.
func changeService(t *testing.T, st *store.Store, ns, name string, mutate func(*corev1.Service)) {
	t.Helper()
	for range 20 {
		s := getService(t, st, ns, name)
		mutate(s)
		err := st.Update(t.Context(), s)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	t.Fatalf("service %s/%s: too many conflicts", ns, name)
}

// reservationsOf returns the addresses reserved for the service.
func reservationsOf(t *testing.T, st *store.Store, ns, name string) []string {
	t.Helper()
	var out []string
	for n, r := range listIPAddresses(t, st) {
		if parentService(r) == ns+"/"+name {
			out = append(out, n)
		}
	}
	return out
}

func waitReservations(t *testing.T, st *store.Store, ns, name string, want ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("reservations of %s/%s: %v", ns, name, want), func() (bool, string) {
		got := reservationsOf(t, st, ns, name)
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
}

// TestServiceIPRelease: headless and ExternalName services get no address;
// a service that becomes ExternalName gives its address back (and loses the
// fields filled with it), gets a new one when it becomes ClusterIP again,
// and a deleted service's reservation goes.
func TestServiceIPRelease(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, testOptions())
	createObj(t, st, gitService("shop", "headless", withClusterIP(corev1.ClusterIPNone)))
	createObj(t, st, gitService("shop", "external", func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName, s.Spec.InternalTrafficPolicy = corev1.ServiceTypeExternalName, "db.example.com", nil
	}))
	createObj(t, st, gitService("shop", "web"))
	createObj(t, st, gitService("shop", "gone"))

	for _, tc := range []struct{ name, ip, message string }{
		{"headless", corev1.ClusterIPNone, "headless: no cluster IP"},
		{"external", "", "ExternalName: no cluster IP"},
	} {
		s := waitAllocated(t, st, "shop", tc.name, metav1.ConditionTrue, ReasonAllocated)
		if s.Spec.ClusterIP != tc.ip || allocatedMessage(s) != tc.message || HealthOf(s).Status != Healthy {
			t.Errorf("%s: clusterIP %q, message %q, health %+v", tc.name, s.Spec.ClusterIP, allocatedMessage(s), HealthOf(s))
		}
		waitReservations(t, st, "shop", tc.name)
	}

	web := waitAllocated(t, st, "shop", "web", metav1.ConditionTrue, ReasonAllocated)
	waitReservations(t, st, "shop", "web", web.Spec.ClusterIP)
	changeService(t, st, "shop", "web", func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName, s.Spec.InternalTrafficPolicy = corev1.ServiceTypeExternalName, "web.example.com", nil
	})
	ext := waitAllocated(t, st, "shop", "web", metav1.ConditionTrue, ReasonAllocated)
	if ext.Spec.ClusterIP != "" || ext.Spec.ClusterIPs != nil || ext.Spec.IPFamilies != nil || ext.Spec.IPFamilyPolicy != nil {
		t.Errorf("ExternalName keeps clusterIP %q %v %v %v", ext.Spec.ClusterIP, ext.Spec.ClusterIPs, ext.Spec.IPFamilies, ext.Spec.IPFamilyPolicy)
	}
	waitReservations(t, st, "shop", "web")
	changeService(t, st, "shop", "web", func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeClusterIP, ""
	})
	again := waitAllocated(t, st, "shop", "web", metav1.ConditionTrue, ReasonAllocated)
	if again.Spec.ClusterIP == "" {
		t.Fatal("no address after becoming ClusterIP again")
	}
	waitReservations(t, st, "shop", "web", again.Spec.ClusterIP)

	gone := waitAllocated(t, st, "shop", "gone", metav1.ConditionTrue, ReasonAllocated)
	waitReservations(t, st, "shop", "gone", gone.Spec.ClusterIP)
	if err := st.Delete(t.Context(), store.MustResource("services"), "shop", "gone", nil); err != nil {
		t.Fatal(err)
	}
	waitReservations(t, st, "shop", "gone")
	checkReservations(t, st)
}

// otherCondition is a condition of another controller's. Not the
// EndpointSlice controller's own EndpointsReady: that controller runs too
// and writes it.
const otherCondition = "example.com/Probed"

// TestServiceIPKeepsOthersFields: while another controller rewrites its
// own condition again and again, the allocator writes its fields and its
// condition by compare-and-swap and never puts back an older version of
// anything else: labels, annotations, spec fields from Git and the other
// condition end as their last writer left them.
func TestServiceIPKeepsOthersFields(t *testing.T) {
	st := etcdtest.NewStore(t)
	startControllers(t, st, testOptions())
	const writes = 30
	svc := gitService("shop", "cart", func(s *corev1.Service) {
		s.Annotations = map[string]string{"team": "payments"}
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.PublishNotReadyAddresses = true
	})
	var wg sync.WaitGroup
	wg.Add(1)
	errs := make(chan error, 1)
	go func() {
		defer wg.Done()
		// The endpoints controller's writes, racing the allocator's.
		for i := 0; i < writes; {
			s := &corev1.Service{}
			if err := st.Get(t.Context(), "shop", "cart", s); errors.Is(err, store.ErrNotFound) {
				continue // not created yet
			} else if err != nil {
				errs <- err
				return
			}
			meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: otherCondition,
				Status: metav1.ConditionFalse, Reason: "NoPods", Message: fmt.Sprintf("write %d", i)})
			switch err := st.Update(t.Context(), s); {
			case err == nil:
				i++
			case !errors.Is(err, store.ErrConflict):
				errs <- err
				return
			}
		}
	}()
	createObj(t, st, svc)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	s := waitAllocated(t, st, "shop", "cart", metav1.ConditionTrue, ReasonAllocated)
	c := meta.FindStatusCondition(s.Status.Conditions, otherCondition)
	if c == nil || c.Message != fmt.Sprintf("write %d", writes-1) {
		t.Errorf("%s %+v, want the last write", otherCondition, c)
	}
	if s.Labels["app"] != "cart" || s.Annotations["team"] != "payments" || s.Spec.SessionAffinity != corev1.ServiceAffinityClientIP ||
		!s.Spec.PublishNotReadyAddresses || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.IntVal != 8080 {
		t.Errorf("fields from Git changed: labels %v annotations %v spec %+v", s.Labels, s.Annotations, s.Spec)
	}
}
