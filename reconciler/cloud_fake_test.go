package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/keelson/keelson/reconciler/cloud"
)

// errInjected is the fake provider's failure.
var errInjected = errors.New("injected failure")

// fakeCloud is a cloud provider for controller tests: it records every
// call, gives load balancers addresses of 192.0.2.0/24 in the order services
// are first ensured, and fails a method as often as it is told to.
type fakeCloud struct {
	noLB, noInstances, noRoutes bool

	mu    sync.Mutex
	calls []string       // "ensure default/web n1,n2", "update …", "delete default/web", "get …", "create n1 10.42.1.0/24", "remove …", "metadata n1", "shutdown n1", "exists n1"
	fails map[string]int // by method name: failures left
	seen  map[string]*corev1.Service
	ips   map[string]string
	// Instances, by node name.
	shutdown, gone map[string]bool
	meta           map[string]*cloud.InstanceMetadata
	// Routes, by name.
	routes map[string]cloud.Route
}

func newFakeCloud() *fakeCloud {
	return &fakeCloud{fails: map[string]int{}, seen: map[string]*corev1.Service{}, ips: map[string]string{},
		shutdown: map[string]bool{}, gone: map[string]bool{}, meta: map[string]*cloud.InstanceMetadata{}, routes: map[string]cloud.Route{}}
}

func (f *fakeCloud) Name() string { return "fake" }

func (f *fakeCloud) LoadBalancer() (cloud.LoadBalancer, bool) { return f, !f.noLB }
func (f *fakeCloud) Instances() (cloud.Instances, bool)       { return f, !f.noInstances }
func (f *fakeCloud) Routes() (cloud.Routes, bool)             { return f, !f.noRoutes }

// failNext makes the next n calls of method fail.
func (f *fakeCloud) failNext(method string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[method] = n
}

// call records a call and reports whether it fails.
func (f *fakeCloud) call(method, args string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.TrimSpace(method+" "+args))
	if f.fails[method] > 0 {
		f.fails[method]--
		return fmt.Errorf("%s: %w", method, errInjected)
	}
	return nil
}

// callsOf are the recorded calls that start with prefix.
func (f *fakeCloud) callsOf(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// ensured is the service as last given to EnsureLoadBalancer.
func (f *fakeCloud) ensured(key string) *corev1.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[key]
}

func nodeNames(nodes []*corev1.Node) string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return strings.Join(names, ",")
}

func svcKey(s *corev1.Service) string { return s.Namespace + "/" + s.Name }

func (f *fakeCloud) status(key string) *corev1.LoadBalancerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	ip, ok := f.ips[key]
	if !ok {
		ip = fmt.Sprintf("192.0.2.%d", len(f.ips)+1)
		f.ips[key] = ip
	}
	return &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}
}

func (f *fakeCloud) GetLoadBalancer(_ context.Context, svc *corev1.Service) (*corev1.LoadBalancerStatus, bool, error) {
	if err := f.call("get", svcKey(svc)); err != nil {
		return nil, false, err
	}
	return f.status(svcKey(svc)), true, nil
}

func (f *fakeCloud) EnsureLoadBalancer(_ context.Context, svc *corev1.Service, nodes []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	if err := f.call("ensure", svcKey(svc)+" "+nodeNames(nodes)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.seen[svcKey(svc)] = svc.DeepCopy()
	f.mu.Unlock()
	return f.status(svcKey(svc)), nil
}

func (f *fakeCloud) UpdateLoadBalancer(_ context.Context, svc *corev1.Service, nodes []*corev1.Node) error {
	return f.call("update", svcKey(svc)+" "+nodeNames(nodes))
}

func (f *fakeCloud) EnsureLoadBalancerDeleted(_ context.Context, svc *corev1.Service) error {
	return f.call("delete", svcKey(svc))
}

func (f *fakeCloud) setInstance(node string, shutdown, gone bool, md *cloud.InstanceMetadata) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown[node], f.gone[node] = shutdown, gone
	if md != nil {
		f.meta[node] = md
	}
}

func (f *fakeCloud) InstanceExists(_ context.Context, n *corev1.Node) (bool, error) {
	if err := f.call("exists", n.Name); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.gone[n.Name], nil
}

func (f *fakeCloud) InstanceShutdown(_ context.Context, n *corev1.Node) (bool, error) {
	if err := f.call("shutdown", n.Name); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shutdown[n.Name], nil
}

func (f *fakeCloud) InstanceMetadata(_ context.Context, n *corev1.Node) (*cloud.InstanceMetadata, error) {
	if err := f.call("metadata", n.Name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if md, ok := f.meta[n.Name]; ok {
		return md, nil
	}
	return &cloud.InstanceMetadata{}, nil
}

func (f *fakeCloud) ListRoutes(context.Context) ([]cloud.Route, error) {
	if err := f.call("list", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.Route
	for _, r := range f.routes {
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeCloud) CreateRoute(_ context.Context, nameHint string, r cloud.Route) error {
	if err := f.call("create", r.TargetNode+" "+r.DestinationCIDR); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r.Name = nameHint + "-" + strings.NewReplacer(".", "-", "/", "-").Replace(r.DestinationCIDR)
	f.routes[r.Name] = r
	return nil
}

func (f *fakeCloud) DeleteRoute(_ context.Context, r cloud.Route) error {
	if err := f.call("remove", r.TargetNode+" "+r.DestinationCIDR); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, r.Name)
	return nil
}

// routeTable lists the routes as sorted "node cidr" lines.
func (f *fakeCloud) routeTable() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.routes {
		out = append(out, r.TargetNode+" "+r.DestinationCIDR)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}
