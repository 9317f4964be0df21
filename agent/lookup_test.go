package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLookupServices: the first lookup waits for the informer's first list,
// and fails instead of blocking when that list does not come in time.
func TestLookupServices(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    bool
		syncWait time.Duration
		want     int // services found; -1 for an error
	}{
		{"waits for the first list", true, time.Minute, 1},
		{"fails when the list does not come", false, 10 * time.Millisecond, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}},
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "db"}})
			factory := informers.NewSharedInformerFactory(cs, 0)
			services := factory.Core().V1().Services()
			l := apiLookup{client: cs, services: services.Lister(), synced: services.Informer().HasSynced, syncWait: tc.syncWait}
			if tc.start {
				factory.Start(t.Context().Done())
				t.Cleanup(factory.Shutdown)
			}
			got, err := l.Services(t.Context(), "shop")
			switch {
			case tc.want < 0 && err == nil:
				t.Errorf("Services: %d services, want an error", len(got))
			case tc.want >= 0 && err != nil:
				t.Errorf("Services: %v", err)
			case tc.want >= 0 && len(got) != tc.want:
				t.Errorf("Services: %d services, want %d", len(got), tc.want)
			}
		})
	}
}
