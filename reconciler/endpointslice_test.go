package reconciler

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

var sliceName = regexp.MustCompile(`^web-[a-z0-9]{5}$`)

func TestEndpointSliceSelectionAndLabels(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true), epPod("web-2", "web", "10.42.0.12", true),
		epPod("web-3", "web", "10.42.0.13", true), epPod("api-1", "api", "10.42.0.14", true))
	svc := epService("web", map[string]string{"app": "web"}, httpToWeb)
	env.create(svc)
	ss := env.waitSlices("web", "three ready endpoints", readyIPsAre("10.42.0.11", "10.42.0.12", "10.42.0.13"))
	if len(ss) != 1 {
		t.Fatalf("want one slice: %s", describeSlices(ss))
	}
	s := ss[0]
	if !sliceName.MatchString(s.Name) || s.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("slice %s, address type %s", s.Name, s.AddressType)
	}
	wantLabels := map[string]string{servicenet.LabelServiceName: "web", servicenet.LabelManagedBy: servicenet.EndpointSliceManagedBy}
	if fmt.Sprint(s.Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("labels %v, want %v (the service's own labels are not copied)", s.Labels, wantLabels)
	}
	ref := metav1.GetControllerOf(s)
	if len(s.OwnerReferences) != 1 || ref == nil || ref.UID != svc.UID || ref.Kind != "Service" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("owner references %+v, want the service %s as controller", s.OwnerReferences, svc.UID)
	}
	if got := portsKey(s.Ports); got != "http/TCP/8080/;" {
		t.Errorf("ports %s, want http/TCP/8080", got)
	}
	for _, ep := range s.Endpoints {
		if ptr.Deref(ep.NodeName, "") != "n1" || ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || ep.TargetRef.UID == "" {
			t.Errorf("endpoint %v: node %v, targetRef %+v", ep.Addresses, ep.NodeName, ep.TargetRef)
		}
	}
	env.waitCondition("web", metav1.ConditionTrue, ReasonEndpointsReady, "")

	change(env, epPod("web-3", "", "", false), func(p *corev1.Pod) { p.Labels["app"] = "api" })
	env.waitSlices("web", "web-3 relabelled away", readyIPsAre("10.42.0.11", "10.42.0.12"))
	change(env, epPod("api-1", "", "", false), func(p *corev1.Pod) { p.Labels["app"] = "web" })
	ss = env.waitSlices("web", "api-1 relabelled in", readyIPsAre("10.42.0.11", "10.42.0.12", "10.42.0.14"))
	if len(ss) != 1 || ss[0].Name != s.Name {
		t.Errorf("the slice was replaced instead of updated: %s", describeSlices(ss))
	}
}

// A readiness flip is one write of one slice, and the service's condition is
// written only when its status changes.
func TestEndpointSliceReadinessFlip(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true), epPod("web-2", "web", "10.42.0.12", true), epPod("web-3", "web", "10.42.0.13", true))
	env.create(epService("web", map[string]string{"app": "web"}, httpToWeb))
	ss := env.waitSlices("web", "three ready", readyIPsAre("10.42.0.11", "10.42.0.12", "10.42.0.13"))
	svc := env.waitCondition("web", metav1.ConditionTrue, ReasonEndpointsReady, "")
	w, err := env.st.Watch(t.Context(), store.MustResource("endpointslices.discovery.k8s.io"), store.WatchOptions{ResourceVersion: ss[0].ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	sw, err := env.st.Watch(t.Context(), store.MustResource("services"), store.WatchOptions{ResourceVersion: svc.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Stop()
	flips := []struct {
		pod   string
		ready bool
		want  []string
	}{
		{"web-2", false, []string{"10.42.0.11", "10.42.0.13"}},
		{"web-2", true, []string{"10.42.0.11", "10.42.0.12", "10.42.0.13"}},
		{"web-1", false, []string{"10.42.0.12", "10.42.0.13"}},
		{"web-3", false, []string{"10.42.0.12"}},
		{"web-1", true, []string{"10.42.0.11", "10.42.0.12"}},
		{"web-3", true, []string{"10.42.0.11", "10.42.0.12", "10.42.0.13"}},
	}
	for i, f := range flips {
		change(env, epPod(f.pod, "", "", false), setReady(f.ready))
		ev := nextEvent(t, w)
		for isOtherService(ev.Object, "web") {
			ev = nextEvent(t, w)
		}
		s, ok := ev.Object.(*discoveryv1.EndpointSlice)
		if !ok || ev.Type != watch.Modified || s.Name != ss[0].Name {
			t.Fatalf("flip %d: first slice event %s %T, want the slice %s modified", i, ev.Type, ev.Object, ss[0].Name)
		}
		if got := readyIPs([]*discoveryv1.EndpointSlice{s}); !slices.Equal(got, f.want) {
			t.Fatalf("flip %d (%s ready=%v): the slice's first write shows ready %v, want %v: more than one write per flip",
				i, f.pod, f.ready, got, f.want)
		}
	}
	// All three unready, then one back: the condition goes False and True,
	// once each; the flips above, which kept ready endpoints, wrote nothing.
	for _, p := range []string{"web-1", "web-2", "web-3"} {
		change(env, epPod(p, "", "", false), setReady(false))
	}
	env.waitCondition("web", metav1.ConditionFalse, ReasonNoReadyEndpoints, "none of the 3 selected pods is ready")
	change(env, epPod("web-2", "", "", false), setReady(true))
	last := env.waitCondition("web", metav1.ConditionTrue, ReasonEndpointsReady, "")
	seen := conditionHistory(t, sw, svc, last.ResourceVersion)
	want := []string{"True/EndpointsReady/the service has ready endpoints",
		"False/NoReadyEndpoints/none of the 3 selected pods is ready", "True/EndpointsReady/the service has ready endpoints"}
	if !slices.Equal(seen, want) {
		t.Errorf("successive EndpointsReady conditions %q, want %q", seen, want)
	}
}

// conditionHistory returns the successive values of the service's
// EndpointsReady condition from svc to version last, as w shows them.
// Others write the service too (its cluster IP): only changes of the
// condition count.
func conditionHistory(t *testing.T, w watch.Interface, svc *corev1.Service, last string) []string {
	seen := []string{condOf(svc)}
	for {
		s := nextEvent(t, w).Object.(*corev1.Service)
		if s.Name != svc.Name {
			continue // the control plane's own services
		}
		if c := condOf(s); c != seen[len(seen)-1] {
			seen = append(seen, c)
		}
		if s.ResourceVersion == last {
			return seen
		}
	}
}

// isOtherService reports whether a slice event is of another service than
// svc (the control plane's own, made at start).
func isOtherService(obj any, svc string) bool {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	return ok && s.Labels[servicenet.LabelServiceName] != svc
}

func condOf(s *corev1.Service) string {
	for _, c := range s.Status.Conditions {
		if c.Type == servicenet.ConditionEndpointsReady {
			return string(c.Status) + "/" + c.Reason + "/" + c.Message
		}
	}
	return "none"
}

// hold keeps a deleted pod Terminating: a finalizer nobody removes.
const hold = "test.keelson.dev/hold"

func TestEndpointSliceTerminatingAndPublishNotReady(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	terminating := epPod("web-3", "web", "10.42.0.13", true)
	terminating.Finalizers = []string{hold}
	env.create(epPod("web-1", "web", "10.42.0.11", true), epPod("web-2", "web", "10.42.0.12", false), terminating)
	// As a graceful deletion leaves it while the agent stops it.
	change(env, terminating, func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) })
	all := epService("web-all", map[string]string{"app": "web"}, httpToWeb)
	all.Spec.PublishNotReadyAddresses = true
	env.create(epService("web", map[string]string{"app": "web"}, httpToWeb), all)
	cases := []struct {
		svc       string
		slices    []string // "ip ready/serving/terminating"
		endpoints []string // ready ips, not-ready with "?"
	}{
		{"web", []string{"10.42.0.11 true/true/false", "10.42.0.12 false/false/false", "10.42.0.13 false/true/true"},
			[]string{"10.42.0.11", "10.42.0.12?"}},
		{"web-all", []string{"10.42.0.11 true/true/false", "10.42.0.12 true/true/false", "10.42.0.13 true/true/true"},
			[]string{"10.42.0.11", "10.42.0.12", "10.42.0.13"}},
	}
	for _, tc := range cases {
		t.Run(tc.svc, func(t *testing.T) {
			env.waitSlices(tc.svc, "endpoint conditions", func(ss []*discoveryv1.EndpointSlice) bool {
				return slices.Equal(endpointState(ss), tc.slices)
			})
			env.waitEndpoints(tc.svc, "addresses", func(ep *corev1.Endpoints) bool {
				return ep != nil && slices.Equal(addressesOf(ep), tc.endpoints)
			})
		})
	}
}

func TestEndpointSliceNamedPortsPerPod(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	sidecar := corev1.ContainerRestartPolicyAlways
	b1 := epPod("b-1", "web", "10.42.0.21", true)
	b1.Spec.Containers[0].Ports = nil
	b1.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "proxy", RestartPolicy: &sidecar,
		Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9090}}}}
	env.create(epPod("a-1", "web", "10.42.0.11", true), epPod("a-2", "web", "10.42.0.12", true), b1)
	env.create(epService("web", map[string]string{"app": "web"}, httpToWeb))
	ss := env.waitSlices("web", "two port sets", func(ss []*discoveryv1.EndpointSlice) bool {
		return len(ss) == 2 && slices.Equal(readyIPs(ss), []string{"10.42.0.11", "10.42.0.12", "10.42.0.21"})
	})
	byPort := map[string][]string{}
	for _, s := range ss {
		byPort[portsKey(s.Ports)] = readyIPs([]*discoveryv1.EndpointSlice{s})
	}
	want := map[string][]string{"http/TCP/8080/;": {"10.42.0.11", "10.42.0.12"}, "http/TCP/9090/;": {"10.42.0.21"}}
	if fmt.Sprint(byPort) != fmt.Sprint(want) {
		t.Errorf("slices by port %v, want %v", byPort, want)
	}
	ep := env.waitEndpoints("web", "two subsets", func(ep *corev1.Endpoints) bool { return ep != nil && len(ep.Subsets) == 2 })
	for _, ss := range ep.Subsets {
		if len(ss.Ports) != 1 || (ss.Ports[0].Port == 9090) != (len(ss.Addresses) == 1 && ss.Addresses[0].IP == "10.42.0.21") {
			t.Errorf("subset %+v", ss)
		}
	}
}

// A named target port no selected pod defines gives no endpoint and a
// condition saying so; a selector that selects nothing too. Neither
// crashes anything, and fixing them brings endpoints.
func TestEndpointSliceNoMatchingPortAndNoPods(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true), epPod("web-2", "web", "10.42.0.12", true), epPod("web-3", "web", "10.42.0.13", true))
	bad := httpToWeb
	bad.TargetPort.StrVal = "nope"
	env.create(epService("web", map[string]string{"app": "web"}, bad), epService("none", map[string]string{"app": "nothing"}, httpToWeb))
	env.waitCondition("web", metav1.ConditionFalse, ReasonNoMatchingPort, `target port "nope" of port "http" is defined by none of the 3 selected pods`)
	env.waitCondition("none", metav1.ConditionFalse, ReasonNoPodsSelected, "selector app=nothing selects no pod in namespace default")
	for _, name := range []string{"web", "none"} {
		ss := env.waitSlices(name, "one empty slice", func(ss []*discoveryv1.EndpointSlice) bool {
			return len(ss) == 1 && len(ss[0].Endpoints) == 0
		})
		if len(ss[0].Ports) != 0 {
			t.Errorf("%s: the empty slice has ports: %s", name, describeSlices(ss))
		}
		env.waitEndpoints(name, "no addresses", func(ep *corev1.Endpoints) bool { return ep != nil && len(ep.Subsets) == 0 })
	}
	fixed := epPod("web-4", "web", "10.42.0.14", true)
	fixed.Spec.Containers[0].Ports = append(fixed.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "nope", ContainerPort: 7070})
	env.create(fixed, epPod("nothing-1", "nothing", "10.42.0.31", true))
	ss := env.waitSlices("web", "the pod that defines it", readyIPsAre("10.42.0.14"))
	if len(ss) != 1 || portsKey(ss[0].Ports) != "http/TCP/7070/;" {
		t.Errorf("want the placeholder reused with port 7070: %s", describeSlices(ss))
	}
	env.waitCondition("web", metav1.ConditionTrue, ReasonEndpointsReady, "the service has ready endpoints")
	env.waitSlices("none", "the new pod", readyIPsAre("10.42.0.31"))
	env.waitCondition("none", metav1.ConditionTrue, ReasonEndpointsReady, "")
}
