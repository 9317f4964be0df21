package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
)

var planSvc = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "svc-uid"}}

func planEP(n int, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{fmt.Sprintf("10.42.%d.%d", n/250, n%250+1)},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("pod-%d", n)},
	}
}

func planPorts(port int32) []discoveryv1.EndpointPort {
	return []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}}
}

// planSlice is a slice as the controller writes it, holding endpoints
// first..last (ready) under port.
func planSlice(name string, port int32, first, last int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, ResourceVersion: "7",
			Labels:          map[string]string{servicenet.LabelServiceName: "web", servicenet.LabelManagedBy: servicenet.EndpointSliceManagedBy},
			OwnerReferences: []metav1.OwnerReference{ownerRef(planSvc, serviceGVK)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	if port != 0 {
		s.Ports = planPorts(port)
	}
	for i := first; i <= last; i++ {
		s.Endpoints = append(s.Endpoints, planEP(i, true))
	}
	return s
}

// planWant is endpoints first..last under port, those in notReady not ready.
func planWant(port int32, first, last int, notReady ...int) endpointSet {
	set := endpointSet{}
	for i := first; i <= last; i++ {
		set.add(planPorts(port), planEP(i, !slices.Contains(notReady, i)))
	}
	return set
}

func sliceSizes(ss []*discoveryv1.EndpointSlice) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = len(s.Endpoints)
	}
	return out
}

func names(ss []*discoveryv1.EndpointSlice) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return strings.Join(out, ",")
}

func TestPlanSlices(t *testing.T) {
	spec := sliceSpec{svc: planSvc, managedBy: servicenet.EndpointSliceManagedBy, max: 100}
	cases := []struct {
		name        string
		existing    []*discoveryv1.EndpointSlice
		want        endpointSet
		creates     []int // sizes of the slices created
		updates     string
		updateSizes []int
		deletes     string
	}{
		{name: "new service of 250 endpoints", want: planWant(80, 0, 249), creates: []int{100, 100, 50}},
		{name: "nothing changed", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 149)},
			want: planWant(80, 0, 149)},
		{name: "a readiness flip writes its slice only", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 149)},
			want: planWant(80, 0, 149, 120), updates: "b", updateSizes: []int{50}},
		{name: "gone endpoints leave their slice only", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 149)},
			want: planWant(80, 10, 149), updates: "a", updateSizes: []int{90}},
		{name: "new endpoints fill a slice with room", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 149)},
			want: planWant(80, 0, 159), updates: "b", updateSizes: []int{60}},
		{name: "new endpoints go first to a slice written anyway", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 49), planSlice("b", 80, 100, 149)},
			want: planWant(80, 0, 49).merge(planWant(80, 100, 154, 120)), updates: "b", updateSizes: []int{55}},
		{name: "overflow makes a new slice", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99)},
			want: planWant(80, 0, 104), creates: []int{5}},
		{name: "an emptied slice takes new endpoints instead of being deleted", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 109)},
			want: planWant(80, 0, 99).merge(planWant(80, 200, 204)), updates: "b", updateSizes: []int{5}},
		{name: "a port change rewrites slices in place", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 149)},
			want: planWant(8080, 0, 149), updates: "a,b", updateSizes: []int{100, 50}},
		{name: "emptied slices are deleted", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 149)},
			want: planWant(80, 0, 99), deletes: "b"},
		{name: "no endpoints and no slice: one empty slice", want: endpointSet{}, creates: []int{0}},
		{name: "no endpoints left: one slice kept, emptied", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 99), planSlice("b", 80, 100, 149)},
			want: endpointSet{}, updates: "a", updateSizes: []int{0}, deletes: "b"},
		{name: "no endpoints: the empty slice is the one kept", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 9), planSlice("b", 0, 1, 0)},
			want: endpointSet{}, deletes: "a"},
		{name: "an endpoint in two slices is kept once", existing: []*discoveryv1.EndpointSlice{planSlice("a", 80, 0, 9), planSlice("b", 80, 5, 14)},
			want: planWant(80, 0, 14), updates: "b", updateSizes: []int{5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planSlices(spec, tc.existing, tc.want)
			if got := sliceSizes(plan.create); !slices.Equal(got, tc.creates) {
				t.Errorf("created slices of sizes %v, want %v", got, tc.creates)
			}
			if got := names(plan.update); got != tc.updates {
				t.Errorf("updated %q, want %q", got, tc.updates)
			}
			if tc.updateSizes != nil && !slices.Equal(sliceSizes(plan.update), tc.updateSizes) {
				t.Errorf("updated slices of sizes %v, want %v", sliceSizes(plan.update), tc.updateSizes)
			}
			if got := names(plan.delete); got != tc.deletes {
				t.Errorf("deleted %q, want %q", got, tc.deletes)
			}
			checkPlanResult(t, spec, tc.existing, plan, tc.want)
		})
	}
}

// merge adds the endpoints of o to s.
func (s endpointSet) merge(o endpointSet) endpointSet {
	for _, g := range o {
		for _, e := range g.eps {
			s.add(g.ports, e)
		}
	}
	return s
}

// checkPlanResult applies the plan to existing and checks that the slices
// then hold exactly the wanted endpoints, each once, in slices of at most
// max with the labels and owner the spec asks for.
func checkPlanResult(t *testing.T, spec sliceSpec, existing []*discoveryv1.EndpointSlice, plan slicePlan, want endpointSet) {
	t.Helper()
	after := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		after[s.Name] = s
	}
	for _, s := range plan.delete {
		delete(after, s.Name)
	}
	for _, s := range append(plan.update, plan.create...) {
		after[s.Name] = s
		if !spec.metaOK(s) {
			t.Errorf("slice %s written without the labels, owner or address type: %+v", s.Name, s.ObjectMeta)
		}
	}
	seen := map[string]bool{}
	for _, s := range after {
		if len(s.Endpoints) > spec.max {
			t.Errorf("slice %s holds %d endpoints, more than %d", s.Name, len(s.Endpoints), spec.max)
		}
		pk := portsKey(s.Ports)
		for _, e := range s.Endpoints {
			k := pk + "#" + endpointKey(e)
			if seen[k] {
				t.Errorf("endpoint %s twice", k)
			}
			seen[k] = true
			g := want[pk]
			if g == nil || !equalEndpoint(g.eps[endpointKey(e)], e) {
				t.Errorf("slice %s holds %s, not wanted as it is", s.Name, k)
			}
		}
	}
	total := 0
	for _, g := range want {
		total += len(g.eps)
	}
	if len(seen) != total {
		t.Errorf("slices hold %d endpoints, want %d", len(seen), total)
	}
	if len(after) == 0 {
		t.Errorf("no slice left; one, empty, must stay")
	}
}

func equalEndpoint(a, b discoveryv1.Endpoint) bool {
	return endpointKey(a) == endpointKey(b) && ptr.Deref(a.Conditions.Ready, false) == ptr.Deref(b.Conditions.Ready, false)
}

func TestSliceTracker(t *testing.T) {
	now := metav1.Now().Time
	tr := newSliceTracker()
	tr.now = func() time.Time { return now }
	at := func(name, rv string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	const key = "default/web"
	if tr.stale(key, nil) {
		t.Fatal("stale with nothing written")
	}
	tr.wrote(key, "web-a", "10")
	tr.deleting(key, "web-b")
	steps := []struct {
		name   string
		cached []*discoveryv1.EndpointSlice
		stale  bool
	}{
		{"the write not shown yet", []*discoveryv1.EndpointSlice{at("web-b", "5")}, true},
		{"an older version shown", []*discoveryv1.EndpointSlice{at("web-a", "9"), at("web-b", "5")}, true},
		{"the delete not shown yet", []*discoveryv1.EndpointSlice{at("web-a", "10"), at("web-b", "5")}, true},
		{"both shown", []*discoveryv1.EndpointSlice{at("web-a", "12")}, false},
		{"nothing awaited any more", nil, false},
	}
	for _, s := range steps {
		if got := tr.stale(key, s.cached); got != s.stale {
			t.Errorf("%s: stale = %v, want %v", s.name, got, s.stale)
		}
	}
	tr.wrote(key, "web-c", "20")
	tr.gone(key, "web-c")
	if tr.stale(key, nil) {
		t.Error("a slice seen deleted is still awaited")
	}
	tr.wrote(key, "web-d", "30")
	now = now.Add(sliceTrackerTTL + time.Second)
	if tr.stale(key, nil) {
		t.Error("awaited past the TTL")
	}
}
