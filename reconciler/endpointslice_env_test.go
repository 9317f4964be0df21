package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// epEnv is a store with every controller running and no fake node: the
// tests write pods with the status an agent would give them.
type epEnv struct {
	t  *testing.T
	st *store.Store
}

func newEPEnv(t *testing.T, opts EndpointsOptions) *epEnv {
	st := etcdtest.NewStore(t)
	o := testOptions()
	o.Endpoints = opts
	startControllers(t, st, o)
	return &epEnv{t: t, st: st}
}

var httpToWeb = corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web")}

// epService is a service from Git selecting sel.
func epService(name string, sel map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{keelsonv1alpha1.LabelSource: "test"}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: sel, Ports: ports},
	}
}

// epPod is a running pod on node n1 labelled app, with ip, whose container
// names port 8080 "web".
func epPod(name, app, ip string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main", Image: "web",
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
	if ip != "" {
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	return p
}

// create writes objects, a few hundred a transaction.
func (e *epEnv) create(objs ...store.Object) {
	e.t.Helper()
	for len(objs) > 0 {
		n := min(len(objs), 500)
		ops := make([]store.Op, n)
		for i, o := range objs[:n] {
			ops[i] = store.CreateOp(o)
		}
		if err := e.st.Txn(e.t.Context(), ops...); err != nil {
			e.t.Fatal(err)
		}
		objs = objs[n:]
	}
}

// change reads an object fresh, lets edit change it and writes it back,
// again on conflicts with the controllers' writes.
func change[T store.Object](e *epEnv, obj T, edit func(T)) T {
	e.t.Helper()
	for range 20 {
		fresh := obj.DeepCopyObject().(T)
		if err := e.st.Get(e.t.Context(), obj.GetNamespace(), obj.GetName(), fresh); err != nil {
			e.t.Fatal(err)
		}
		edit(fresh)
		err := e.st.Update(e.t.Context(), fresh)
		if err == nil {
			return fresh
		}
		if !errors.Is(err, store.ErrConflict) {
			e.t.Fatal(err)
		}
	}
	e.t.Fatalf("update %s: too many conflicts", obj.GetName())
	return obj
}

func setReady(ready bool) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		if ready {
			p.Status.Conditions[0].Status = corev1.ConditionTrue
		}
	}
}

// slicesOf lists the EndpointSlices of a service that managedBy manages
// ("" for all), by name.
func (e *epEnv) slicesOf(svc, managedBy string) []*discoveryv1.EndpointSlice {
	e.t.Helper()
	set := labels.Set{servicenet.LabelServiceName: svc}
	if managedBy != "" {
		set[servicenet.LabelManagedBy] = managedBy
	}
	l, err := e.st.List(e.t.Context(), store.MustResource("endpointslices.discovery.k8s.io"), store.ListOptions{Namespace: "default", Selector: labels.SelectorFromSet(set)})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]*discoveryv1.EndpointSlice, len(l.Items))
	for i, o := range l.Items {
		out[i] = o.(*discoveryv1.EndpointSlice)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// waitSlices waits until the controller's slices of svc satisfy cond.
func (e *epEnv) waitSlices(svc, what string, cond func([]*discoveryv1.EndpointSlice) bool) []*discoveryv1.EndpointSlice {
	e.t.Helper()
	return e.waitManaged(svc, servicenet.EndpointSliceManagedBy, what, cond)
}

func (e *epEnv) waitManaged(svc, managedBy, what string, cond func([]*discoveryv1.EndpointSlice) bool) []*discoveryv1.EndpointSlice {
	e.t.Helper()
	var got []*discoveryv1.EndpointSlice
	eventually(e.t, svc+": "+what, func() (bool, string) {
		got = e.slicesOf(svc, managedBy)
		return cond(got), describeSlices(got)
	})
	return got
}

// endpointState is "ip ready/serving/terminating" of every endpoint.
func endpointState(ss []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		for _, ep := range s.Endpoints {
			c := ep.Conditions
			out = append(out, fmt.Sprintf("%s %v/%v/%v", strings.Join(ep.Addresses, ","),
				ptr.Deref(c.Ready, false), ptr.Deref(c.Serving, false), ptr.Deref(c.Terminating, false)))
		}
	}
	sort.Strings(out)
	return out
}

// readyIPs are the addresses of the ready endpoints, sorted.
func readyIPs(ss []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, false) {
				out = append(out, ep.Addresses...)
			}
		}
	}
	sort.Strings(out)
	return out
}

func readyIPsAre(ips ...string) func([]*discoveryv1.EndpointSlice) bool {
	sort.Strings(ips)
	return func(ss []*discoveryv1.EndpointSlice) bool { return slices.Equal(readyIPs(ss), ips) }
}

func describeSlices(ss []*discoveryv1.EndpointSlice) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d slices:", len(ss))
	for _, s := range ss {
		eps := endpointState([]*discoveryv1.EndpointSlice{s})
		if len(eps) > 5 {
			eps = append(eps[:5], fmt.Sprintf("%d more", len(eps)-5))
		}
		fmt.Fprintf(&b, " %s(rv %s, ports %s, %d endpoints %v)", s.Name, s.ResourceVersion, portsKey(s.Ports), len(s.Endpoints), eps)
	}
	return b.String()
}

// condition returns the service's EndpointsReady condition as stored.
func (e *epEnv) condition(name string) (*corev1.Service, *metav1.Condition) {
	e.t.Helper()
	svc := &corev1.Service{}
	if err := e.st.Get(e.t.Context(), "default", name, svc); err != nil {
		e.t.Fatal(err)
	}
	return svc, meta.FindStatusCondition(svc.Status.Conditions, servicenet.ConditionEndpointsReady)
}

// waitCondition waits until the service's EndpointsReady condition has
// status and reason (and message, when not empty).
func (e *epEnv) waitCondition(name string, status metav1.ConditionStatus, reason, message string) *corev1.Service {
	e.t.Helper()
	var svc *corev1.Service
	eventually(e.t, name+" condition "+reason, func() (bool, string) {
		var c *metav1.Condition
		svc, c = e.condition(name)
		if c == nil {
			return false, "no condition"
		}
		return c.Status == status && c.Reason == reason && (message == "" || c.Message == message), fmt.Sprintf("%+v", *c)
	})
	return svc
}

// endpoints returns the service's Endpoints object, or nil.
func (e *epEnv) endpoints(name string) *corev1.Endpoints {
	e.t.Helper()
	ep := &corev1.Endpoints{}
	if err := e.st.Get(e.t.Context(), "default", name, ep); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		e.t.Fatal(err)
	}
	return ep
}

// addressesOf gives "ip" of ready and "ip?" of not-ready addresses, sorted.
func addressesOf(ep *corev1.Endpoints) []string {
	var out []string
	if ep == nil {
		return nil
	}
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			out = append(out, a.IP)
		}
		for _, a := range ss.NotReadyAddresses {
			out = append(out, a.IP+"?")
		}
	}
	sort.Strings(out)
	return out
}

func (e *epEnv) waitEndpoints(name, what string, cond func(*corev1.Endpoints) bool) *corev1.Endpoints {
	e.t.Helper()
	var ep *corev1.Endpoints
	eventually(e.t, name+" Endpoints: "+what, func() (bool, string) {
		ep = e.endpoints(name)
		if ep == nil {
			return cond(nil), "no Endpoints"
		}
		return cond(ep), fmt.Sprintf("%v labels %v annotations %v", addressesOf(ep), ep.Labels, ep.Annotations)
	})
	return ep
}

// nextEvent returns the next event of w, failing after a generous bound (a
// hang guard, not a timing assertion).
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch ended")
		}
		return ev
	case <-time.After(60 * time.Second):
		t.Fatal("no event in 60s")
	}
	return watch.Event{}
}
