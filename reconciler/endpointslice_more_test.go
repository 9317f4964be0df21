package reconciler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func manyPods(prefix, app string, first, n int) []store.Object {
	out := make([]store.Object, n)
	for i := range n {
		k := first + i
		out[i] = epPod(fmt.Sprintf("%s-%03d", prefix, k), app, fmt.Sprintf("10.42.%d.%d", k/200, k%200+1), true)
	}
	return out
}

func totalEndpoints(ss []*discoveryv1.EndpointSlice) int {
	n := 0
	for _, s := range ss {
		n += len(s.Endpoints)
	}
	return n
}

func fitsIn(max int) func([]*discoveryv1.EndpointSlice) bool {
	return func(ss []*discoveryv1.EndpointSlice) bool {
		for _, s := range ss {
			if len(s.Endpoints) > max {
				return false
			}
		}
		return true
	}
}

// 250 pods make three slices of at most 100; removing pods of one slice
// writes that slice only, and new pods fill a slice with room.
func TestEndpointSliceScaleAndChurn(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(manyPods("web", "web", 0, 250)...)
	env.create(epService("web", map[string]string{"app": "web"}, httpToWeb))
	ss := env.waitSlices("web", "250 endpoints in 3 slices", func(ss []*discoveryv1.EndpointSlice) bool {
		return len(ss) == 3 && totalEndpoints(ss) == 250 && fitsIn(100)(ss) && len(readyIPs(ss)) == 250
	})
	before := map[string]string{}
	for _, s := range ss {
		before[s.Name] = s.ResourceVersion
	}
	victim := ss[1]
	var ops []store.Op
	for _, ep := range victim.Endpoints[:10] {
		ops = append(ops, store.DeleteOp(store.MustResource("pods"), "default", ep.TargetRef.Name, nil))
	}
	if err := env.st.Txn(t.Context(), ops...); err != nil {
		t.Fatal(err)
	}
	ss = env.waitSlices("web", "240 endpoints", func(ss []*discoveryv1.EndpointSlice) bool { return totalEndpoints(ss) == 240 })
	for _, s := range ss {
		changed := s.ResourceVersion != before[s.Name]
		if changed != (s.Name == victim.Name) {
			t.Errorf("slice %s: written=%v; only %s, which held the deleted pods, should be: %s", s.Name, changed, victim.Name, describeSlices(ss))
		}
	}
	env.create(manyPods("new", "web", 300, 5)...)
	ss = env.waitSlices("web", "245 endpoints", func(ss []*discoveryv1.EndpointSlice) bool { return totalEndpoints(ss) == 245 })
	if len(ss) != 3 || !fitsIn(100)(ss) {
		t.Errorf("new pods made a slice instead of filling one with room: %s", describeSlices(ss))
	}
}

func TestEndpointSliceServiceDeletedCollectsSlicesAndEndpoints(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true))
	svc := epService("web", map[string]string{"app": "web"}, httpToWeb)
	env.create(svc)
	env.waitSlices("web", "one endpoint", readyIPsAre("10.42.0.11"))
	env.waitEndpoints("web", "one address", func(ep *corev1.Endpoints) bool { return slices.Equal(addressesOf(ep), []string{"10.42.0.11"}) })
	if err := Delete(t.Context(), env.st, svc, metav1.DeletePropagationBackground); err != nil {
		t.Fatal(err)
	}
	env.waitManaged("web", "", "all slices collected", func(ss []*discoveryv1.EndpointSlice) bool { return len(ss) == 0 })
	env.waitEndpoints("web", "collected", func(ep *corev1.Endpoints) bool { return ep == nil })
}

func TestEndpointSliceSelectorChanged(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true), epPod("api-1", "api", "10.42.0.21", true))
	svc := epService("web", map[string]string{"app": "web"}, httpToWeb)
	env.create(svc)
	env.waitSlices("web", "web-1", readyIPsAre("10.42.0.11"))
	change(env, svc, func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "api"} })
	env.waitSlices("web", "api-1 instead", readyIPsAre("10.42.0.21"))
	env.waitEndpoints("web", "api-1 instead", func(ep *corev1.Endpoints) bool { return slices.Equal(addressesOf(ep), []string{"10.42.0.21"}) })
	// Without a selector the endpoints are someone else's to give: the
	// controllers' slices, Endpoints and condition go.
	change(env, svc, func(s *corev1.Service) { s.Spec.Selector = nil })
	env.waitManaged("web", "", "no slice", func(ss []*discoveryv1.EndpointSlice) bool { return len(ss) == 0 })
	env.waitEndpoints("web", "deleted", func(ep *corev1.Endpoints) bool { return ep == nil })
	eventually(t, "condition removed", func() (bool, string) {
		_, c := env.condition("web")
		return c == nil, fmt.Sprintf("%+v", c)
	})
}

func TestEndpointSliceHostnameZoneHostNetwork(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelTopologyZone: "zone-a"}}}
	db0 := epPod("db-0", "db", "10.42.0.11", true)
	db0.Spec.Hostname, db0.Spec.Subdomain = "db-0", "db"
	db1 := epPod("db-1", "db", "10.42.0.12", true)
	db1.Spec.Hostname, db1.Spec.Subdomain = "db-1", "elsewhere"
	host := epPod("db-host", "db", "", true)
	host.Spec.HostNetwork = true
	host.Status.HostIP = "192.168.7.4"
	env.create(node, db0, db1, host)
	env.create(epService("db", map[string]string{"app": "db"}, httpToWeb))
	type fields struct{ hostname, zone, node string }
	want := func(zone string) map[string]fields {
		return map[string]fields{
			"10.42.0.11":  {"db-0", zone, "n1"},
			"10.42.0.12":  {"", zone, "n1"},
			"192.168.7.4": {"", zone, "n1"},
		}
	}
	got := func(ss []*discoveryv1.EndpointSlice) map[string]fields {
		out := map[string]fields{}
		for _, s := range ss {
			for _, e := range s.Endpoints {
				out[e.Addresses[0]] = fields{ptr.Deref(e.Hostname, ""), ptr.Deref(e.Zone, ""), ptr.Deref(e.NodeName, "")}
			}
		}
		return out
	}
	for _, zone := range []string{"zone-a", "zone-b"} {
		if zone == "zone-b" {
			change(env, node, func(n *corev1.Node) { n.Labels[corev1.LabelTopologyZone] = "zone-b" })
		}
		env.waitSlices("db", "endpoints in "+zone, func(ss []*discoveryv1.EndpointSlice) bool {
			return fmt.Sprint(got(ss)) == fmt.Sprint(want(zone))
		})
	}
	ep := env.waitEndpoints("db", "three addresses", func(ep *corev1.Endpoints) bool { return len(addressesOf(ep)) == 3 })
	for _, a := range ep.Subsets[0].Addresses {
		if (a.Hostname == "db-0") != (a.IP == "10.42.0.11") || ptr.Deref(a.NodeName, "") != "n1" || a.TargetRef == nil {
			t.Errorf("address %+v", a)
		}
	}
}

// The kubernetes and kube-dns services' endpoints are the control plane's:
// no controller here writes slices, Endpoints or conditions for them.
func TestEndpointSliceControlPlaneServicesIgnored(t *testing.T) {
	env := newEPEnv(t, EndpointsOptions{})
	env.create(epPod("web-1", "web", "10.42.0.11", true))
	cp := epService("api", map[string]string{"app": "web"}, httpToWeb)
	cp.Labels = map[string]string{keelsonv1alpha1.LabelControlPlane: "true"}
	bare := epService("dns", nil, httpToWeb)
	bare.Labels = cp.Labels
	env.create(cp, bare)
	own := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "api", Labels: map[string]string{
			servicenet.LabelServiceName: "api", servicenet.LabelManagedBy: servicenet.ControlPlaneManagedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.168.1.1"}}},
	}
	gitEP := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dns", Labels: map[string]string{keelsonv1alpha1.LabelSource: "test"}},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.168.1.2"}}}}}
	env.create(own, gitEP)
	// Services made after them settle: by then the ignored ones were seen.
	extEP := gitEP.DeepCopy()
	extEP.Name, extEP.ResourceVersion, extEP.UID = "ext", "", ""
	env.create(epService("web", map[string]string{"app": "web"}, httpToWeb), epService("ext", nil, httpToWeb), extEP)
	env.waitSlices("web", "the barrier service's slice", readyIPsAre("10.42.0.11"))
	env.waitEndpoints("web", "the barrier service's Endpoints", func(ep *corev1.Endpoints) bool { return ep != nil })
	env.waitManaged("ext", servicenet.EndpointSliceMirroringManagedBy, "the barrier service's mirrored slice", readyIPsAre("192.168.1.2"))
	for _, name := range []string{"api", "dns"} {
		ss := env.slicesOf(name, "")
		if name == "api" && (len(ss) != 1 || ss[0].Name != "api" || ss[0].ResourceVersion != own.ResourceVersion) {
			t.Errorf("%s: slices %s; want the control plane's only, untouched", name, describeSlices(ss))
		}
		if name == "dns" && len(ss) != 0 {
			t.Errorf("%s: slices %s; want none mirrored", name, describeSlices(ss))
		}
		if _, c := env.condition(name); c != nil {
			t.Errorf("%s: condition %+v written", name, *c)
		}
	}
	if ep := env.endpoints("api"); ep != nil {
		t.Errorf("Endpoints made for the control plane's service: %v", addressesOf(ep))
	}
}

// A cache that does not show the controller's own writes yet must not make
// it write again: here the slices' informer is not even running, so without
// the tracker every Reconcile would make another slice.
func TestEndpointSliceLaggingCacheMakesNoDuplicates(t *testing.T) {
	st := etcdtest.NewStore(t)
	env := &epEnv{t: t, st: st}
	env.create(epPod("web-1", "web", "10.42.0.11", true), epService("web", map[string]string{"app": "web"}, httpToWeb))
	inf := NewInformers(st, 0, testLog())
	c, err := NewEndpointSliceController(st, inf, EndpointsOptions{}, QueueOptions{}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing runs the controller's queue: Reconcile is called here.
	defer c.queue.ShutDown()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	run := func(i cache.SharedIndexInformer) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i.RunWithContext(ctx)
		}()
	}
	var synced []cache.InformerSynced
	for _, r := range []string{"services", "pods", "nodes"} {
		i := inf.For(store.MustResource(r))
		run(i)
		synced = append(synced, i.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatal("caches never synced")
	}
	for i := range 3 {
		res, err := c.Reconcile(ctx, "default/web")
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && res.RequeueAfter == 0 {
			t.Errorf("reconcile %d: no requeue while the cache lags", i)
		}
	}
	written := env.slicesOf("web", "")
	if len(written) != 1 {
		t.Fatalf("want one slice: %s", describeSlices(written))
	}
	run(c.w.slices)
	eventually(t, "the cache catches up and nothing more is written", func() (bool, string) {
		res, err := c.Reconcile(ctx, "default/web")
		return err == nil && res.RequeueAfter == 0, fmt.Sprintf("%+v %v", res, err)
	})
	if now := env.slicesOf("web", ""); len(now) != 1 || now[0].ResourceVersion != written[0].ResourceVersion {
		t.Errorf("slices written again once the cache caught up: %s then %s", describeSlices(written), describeSlices(now))
	}
}
