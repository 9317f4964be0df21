package reconciler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
)

func gitEndpoints(name string, subsets ...corev1.EndpointSubset) *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{keelsonv1alpha1.LabelSource: "test"}},
		Subsets:    subsets,
	}
}

func addrs(ips ...string) []corev1.EndpointAddress {
	out := make([]corev1.EndpointAddress, len(ips))
	for i, ip := range ips {
		out[i] = corev1.EndpointAddress{IP: ip}
	}
	return out
}

func TestEndpointSliceMirroring(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	db := corev1.ServicePort{Name: "db", Protocol: corev1.ProtocolTCP, Port: 5432}
	svc := epService("ext", nil, db)
	ep := gitEndpoints("ext",
		corev1.EndpointSubset{Addresses: addrs("192.168.5.1", "192.168.5.2", "fd00::1"), NotReadyAddresses: addrs("192.168.5.3"),
			Ports: []corev1.EndpointPort{{Name: "db", Port: 5432}}},
		corev1.EndpointSubset{Addresses: addrs("192.168.5.9"), Ports: []corev1.EndpointPort{{Name: "metrics", Port: 9187}}})
	env.create(svc, ep)
	mirror := servicenet.EndpointSliceMirroringManagedBy
	ss := env.waitManaged("ext", mirror, "two port sets mirrored", func(ss []*discoveryv1.EndpointSlice) bool {
		return len(ss) == 2 && fmt.Sprint(endpointState(ss)) == fmt.Sprint([]string{
			"192.168.5.1 true/true/false", "192.168.5.2 true/true/false", "192.168.5.3 false/false/false", "192.168.5.9 true/true/false"})
	})
	for _, s := range ss {
		wantLabels := map[string]string{servicenet.LabelServiceName: "ext", servicenet.LabelManagedBy: mirror}
		if fmt.Sprint(s.Labels) != fmt.Sprint(wantLabels) {
			t.Errorf("slice %s labels %v, want %v", s.Name, s.Labels, wantLabels)
		}
		if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != svc.UID {
			t.Errorf("slice %s owner references %+v", s.Name, s.OwnerReferences)
		}
	}
	if other := env.slicesOf("ext", servicenet.EndpointSliceManagedBy); len(other) != 0 {
		t.Errorf("the selector controller made slices for a selector-less service: %s", describeSlices(other))
	}
	// A change of the Endpoints is a change of the slice holding it.
	change(env, ep, func(e *corev1.Endpoints) { e.Subsets[0].Addresses = addrs("192.168.5.1") })
	after := env.waitManaged("ext", mirror, "192.168.5.2 gone", func(ss []*discoveryv1.EndpointSlice) bool {
		return len(readyIPs(ss)) == 2
	})
	for i := range after {
		if after[i].Name != ss[i].Name {
			t.Fatalf("slices replaced instead of updated: %s then %s", describeSlices(ss), describeSlices(after))
		}
		if changed := after[i].ResourceVersion != ss[i].ResourceVersion; changed != (portsKey(after[i].Ports) == "db/TCP/5432/;") {
			t.Errorf("slice %s (ports %s) written: %v", after[i].Name, portsKey(after[i].Ports), changed)
		}
	}
	// Given a selector, the service's endpoints come from pods instead.
	env.create(epPod("db-1", "db", "10.42.0.11", true))
	change(env, svc, func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "db"} })
	env.waitManaged("ext", mirror, "mirrored slices removed", func(ss []*discoveryv1.EndpointSlice) bool { return len(ss) == 0 })
	env.waitSlices("ext", "the pod", readyIPsAre("10.42.0.11"))
}

// Only Endpoints from Git are mirrored: one without the source label, or
// marked to skip mirroring, is not.
func TestEndpointSliceMirroringOnlyFromGit(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	port := corev1.ServicePort{Name: "db", Protocol: corev1.ProtocolTCP, Port: 5432}
	subset := corev1.EndpointSubset{Addresses: addrs("192.168.5.1"), Ports: []corev1.EndpointPort{{Name: "db", Port: 5432}}}
	plain := gitEndpoints("plain", subset)
	plain.Labels = nil
	skip := gitEndpoints("skip", subset)
	skip.Labels[discoveryv1.LabelSkipMirror] = "true"
	env.create(epService("plain", nil, port), epService("skip", nil, port), plain, skip)
	// A mirrored service made after them is the barrier.
	env.create(epService("barrier", nil, port), gitEndpoints("barrier", subset))
	env.waitManaged("barrier", servicenet.EndpointSliceMirroringManagedBy, "mirrored", readyIPsAre("192.168.5.1"))
	for _, name := range []string{"plain", "skip"} {
		if ss := env.slicesOf(name, ""); len(ss) != 0 {
			t.Errorf("%s: slices %s", name, describeSlices(ss))
		}
	}
}
