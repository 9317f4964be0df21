package reconciler

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

func TestEndpointsObject(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true), epPod("web-2", "web", "10.42.0.12", false))
	svc := epService("web", map[string]string{"app": "web"}, httpToWeb)
	env.create(svc)
	ep := env.waitEndpoints("web", "one ready, one not", func(ep *corev1.Endpoints) bool {
		return slices.Equal(addressesOf(ep), []string{"10.42.0.11", "10.42.0.12?"})
	})
	if ep.Labels[discoveryv1.LabelSkipMirror] != "true" || ep.Labels[keelsonv1alpha1.LabelSource] != "" {
		t.Errorf("labels %v: want skip-mirror, and not the service's source label", ep.Labels)
	}
	if ref := metav1.GetControllerOf(ep); ref == nil || ref.UID != svc.UID || ref.Kind != "Service" {
		t.Errorf("owner references %+v", ep.OwnerReferences)
	}
	ss := ep.Subsets[0]
	if len(ss.Ports) != 1 || ss.Ports[0].Name != "http" || ss.Ports[0].Port != 8080 || ss.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("ports %+v", ss.Ports)
	}
	a := ss.Addresses[0]
	if a.TargetRef == nil || a.TargetRef.Name != "web-1" || a.NodeName == nil || *a.NodeName != "n1" {
		t.Errorf("address %+v", a)
	}
	change(env, epPod("web-2", "", "", false), setReady(true))
	env.waitEndpoints("web", "both ready", func(ep *corev1.Endpoints) bool {
		return slices.Equal(addressesOf(ep), []string{"10.42.0.11", "10.42.0.12"})
	})
}

// Beyond the limit (5 here, 1,000 by default) the Endpoints object keeps
// ready addresses first and says it was truncated.
func TestEndpointsTruncated(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{MaxEndpointsAddresses: 5})
	var pods []store.Object
	for i := range 8 {
		pods = append(pods, epPod(fmt.Sprintf("web-%d", i), "web", fmt.Sprintf("10.42.0.%d", 10+i), i < 6))
	}
	env.create(pods...)
	env.create(epService("web", map[string]string{"app": "web"}, httpToWeb))
	env.waitEndpoints("web", "5 ready addresses, truncated", func(ep *corev1.Endpoints) bool {
		addrs := addressesOf(ep)
		for _, a := range addrs {
			if a[len(a)-1] == '?' {
				return false
			}
		}
		return len(addrs) == 5 && ep.Annotations[corev1.EndpointsOverCapacity] == "truncated"
	})
	// The slices are not truncated.
	env.waitSlices("web", "all 8 pods", func(ss []*discoveryv1.EndpointSlice) bool { return totalEndpoints(ss) == 8 })
	var ops []store.Op
	for i := range 4 {
		ops = append(ops, store.DeleteOp(store.MustResource("pods"), "default", fmt.Sprintf("web-%d", i), nil))
	}
	if err := env.st.Txn(t.Context(), ops...); err != nil {
		t.Fatal(err)
	}
	env.waitEndpoints("web", "4 addresses, no longer truncated", func(ep *corev1.Endpoints) bool {
		_, truncated := ep.Annotations[corev1.EndpointsOverCapacity]
		return slices.Equal(addressesOf(ep), []string{"10.42.0.14", "10.42.0.15", "10.42.0.16?", "10.42.0.17?"}) && !truncated
	})
}

// TestTruncateSubsets: past the limit, ready addresses are kept before
// not-ready ones, and the kind that is cut is cut in every subset (port set)
// by its share, so that a later subset keeps some of its addresses.
func TestTruncateSubsets(t *testing.T) {
	subset := func(port int32, ready, notReady int) corev1.EndpointSubset {
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Port: port}}}
		for i := range ready {
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.42.%d.%d", port%256, i)})
		}
		for i := range notReady {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.42.%d.%d", port%256, 100+i)})
		}
		return ss
	}
	type kept struct {
		port            int32
		ready, notReady int
	}
	cases := []struct {
		name      string
		subsets   []corev1.EndpointSubset
		limit     int
		want      []kept
		truncated bool
	}{
		{"under the limit", []corev1.EndpointSubset{subset(80, 2, 1), subset(81, 1, 1)}, 5, []kept{{80, 2, 1}, {81, 1, 1}}, false},
		{"ready cut by share, not-ready dropped", []corev1.EndpointSubset{subset(80, 6, 1), subset(81, 2, 1)}, 4, []kept{{80, 3, 0}, {81, 1, 0}}, true},
		{"not-ready cut by share", []corev1.EndpointSubset{subset(80, 2, 4), subset(81, 0, 4)}, 6, []kept{{80, 2, 2}, {81, 0, 2}}, true},
		{"a subset left empty goes", []corev1.EndpointSubset{subset(80, 3, 0), subset(81, 0, 2)}, 2, []kept{{80, 2, 0}}, true},
		{"rounding up stops at the limit", []corev1.EndpointSubset{subset(80, 1, 0), subset(81, 1, 0), subset(82, 1, 0)}, 2, []kept{{80, 1, 0}, {81, 1, 0}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, truncated := truncateSubsets(tc.subsets, tc.limit)
			var got []kept
			for _, ss := range out {
				got = append(got, kept{ss.Ports[0].Port, len(ss.Addresses), len(ss.NotReadyAddresses)})
			}
			if !slices.Equal(got, tc.want) || truncated != tc.truncated {
				t.Errorf("kept %v, truncated %v; want %v, %v", got, truncated, tc.want, tc.truncated)
			}
		})
	}
}

// An Endpoints object from Git is never written by the controller, even
// for a service with a selector.
func TestEndpointsFromGitUntouched(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true))
	fromGit := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "legacy", Labels: map[string]string{keelsonv1alpha1.LabelSource: "test"}},
		Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.168.3.3"}}}},
	}
	env.create(fromGit, epService("legacy", map[string]string{"app": "web"}, httpToWeb))
	env.waitSlices("legacy", "its pod, from the selector", readyIPsAre("10.42.0.11"))
	// A service made after it gets its Endpoints: by then legacy was seen.
	env.create(epService("later", map[string]string{"app": "web"}, httpToWeb))
	env.waitEndpoints("later", "written", func(ep *corev1.Endpoints) bool { return ep != nil && len(addressesOf(ep)) == 1 })
	if ep := env.endpoints("legacy"); ep == nil || ep.ResourceVersion != fromGit.ResourceVersion {
		t.Errorf("the Endpoints from Git was rewritten: %+v", ep)
	}
}
