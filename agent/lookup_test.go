package agent

import (
	"reflect"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
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

// TestLookupServiceAccountToken: the token is asked of the pod's
// ServiceAccount ("default" when it names none), bound to the pod, for the
// source's audiences and lifetime; the API's answer and errors come back.
func TestLookupServiceAccountToken(t *testing.T) {
	expires := time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		account   string
		audiences []string
		err       error  // the API's answer
		wantName  string // the account asked
		wantErr   string
	}{
		{"the pod's account, for an audience", "robot", []string{"vault"}, nil, "robot", ""},
		{"the default account, for the API server", "", nil, nil, "default", ""},
		{"the API's error", "robot", nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), "robot"), "robot",
			`token of serviceaccount shop/robot: serviceaccounts "robot" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-0", UID: "uid-cart-0"},
				Spec: corev1.PodSpec{ServiceAccountName: tc.account}}
			cs := fake.NewClientset()
			var asked *authenticationv1.TokenRequest
			var name, ns string
			cs.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
				create := a.(k8stesting.CreateActionImpl)
				if create.GetSubresource() != "token" {
					return false, nil, nil
				}
				asked, name, ns = create.GetObject().(*authenticationv1.TokenRequest), create.Name, create.GetNamespace()
				if tc.err != nil {
					return true, nil, tc.err
				}
				out := asked.DeepCopy()
				out.Status = authenticationv1.TokenRequestStatus{Token: "eyJ.signed", ExpirationTimestamp: metav1.NewTime(expires)}
				return true, out, nil
			})
			l := apiLookup{client: cs}
			tok, exp, err := l.ServiceAccountToken(t.Context(), p, tc.audiences, 3607)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !apierrors.IsNotFound(err) {
					t.Errorf("error %v, want one with %q that is the API's", err, tc.wantErr)
				}
			} else if err != nil || tok != "eyJ.signed" || !exp.Equal(expires) {
				t.Errorf("token %q expiring %v (%v), want the API's", tok, exp, err)
			}
			want := authenticationv1.TokenRequestSpec{
				Audiences: tc.audiences, ExpirationSeconds: ptr.To[int64](3607),
				BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "cart-0", UID: "uid-cart-0"},
			}
			if asked == nil || ns != "shop" || name != tc.wantName || !reflect.DeepEqual(asked.Spec, want) {
				t.Errorf("asked %s/%s for %+v, want shop/%s for %+v", ns, name, asked, tc.wantName, want)
			}
		})
	}
}
