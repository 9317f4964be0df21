package gitsync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// nodePortService creates a NodePort service outside Git holding port, as
// another sync's would be once allocated.
func nodePortService(t *testing.T, st *store.Store, ns, name string, port int32) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, NodePort: port}}}}
	if err := st.Create(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
}

// TestServiceRefusals: a revision whose Services cannot be served is
// refused with the field's file:line:col, and nothing of it is applied.
func TestServiceRefusals(t *testing.T) {
	withIP := func(ip string) string {
		return "  clusterIP: " + ip + "\n  selector: {app: web}\n  ports: [{port: 80}]\n"
	}
	withNodePort := func(port int) string {
		return fmt.Sprintf("  type: NodePort\n  selector: {app: web}\n  ports:\n  - port: 80\n    nodePort: %d\n", port)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, st *store.Store)
		files map[string]string
		want  []string // each error, in order
	}{
		{"cluster IP outside the CIDR", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", withIP("10.99.0.5"))},
			[]string{"svc.yaml:7:14: Service shop/web: spec.clusterIP: 10.99.0.5 is outside the service CIDR 10.43.0.0/16"}},
		{"not an address", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", withIP("web.local"))},
			[]string{`svc.yaml:7:14: Service shop/web: spec.clusterIP: "web.local" is not an IPv4 address`}},
		{"the broadcast address", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", withIP("10.43.255.255"))},
			[]string{"svc.yaml:7:14: Service shop/web: spec.clusterIP: 10.43.255.255 is the network or broadcast address"}},
		{"cluster IP held by another service", func(t *testing.T, st *store.Store) { reserveIP(t, st, "10.43.0.20", "shop", "cart") },
			map[string]string{"svc.yaml": serviceYAML("shop", "web", withIP("10.43.0.20"))},
			[]string{"svc.yaml:7:14: Service shop/web: spec.clusterIP: 10.43.0.20 is held by service shop/cart"}},
		{"the API's address", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", withIP("10.43.0.1"))},
			[]string{"svc.yaml:7:14: Service shop/web: spec.clusterIP: 10.43.0.1 is held by service default/kubernetes"}},
		{"the DNS address", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", withIP("10.43.0.10"))},
			[]string{"svc.yaml:7:14: Service shop/web: spec.clusterIP: 10.43.0.10 is held by service kube-system/kube-dns"}},
		{"one cluster IP asked twice", nil, map[string]string{
			"a.yaml": serviceYAML("shop", "a", withIP("10.43.0.20")), "b.yaml": serviceYAML("shop", "b", withIP("10.43.0.20"))},
			[]string{"b.yaml:7:14: Service shop/b: spec.clusterIP: 10.43.0.20 is asked for by service shop/a too (a.yaml:1)"}},
		{"node port outside the range", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", withNodePort(40000))},
			[]string{"svc.yaml:11:15: Service shop/web: spec.ports[0].nodePort: 40000 is outside the node port range 30000-32767"}},
		{"node port held by another service", func(t *testing.T, st *store.Store) { nodePortService(t, st, "other", "x", 30080) },
			map[string]string{"svc.yaml": serviceYAML("shop", "web", withNodePort(30080))},
			[]string{"svc.yaml:11:15: Service shop/web: spec.ports[0].nodePort: 30080 is held by service other/x"}},
		{"one node port asked twice", nil, map[string]string{
			"a.yaml": serviceYAML("shop", "a", withNodePort(30080)), "b.yaml": serviceYAML("shop", "b", withNodePort(30080))},
			[]string{"b.yaml:11:15: Service shop/b: spec.ports[0].nodePort: 30080 is asked for by service shop/a too (a.yaml:1)"}},
		{"node port of a ClusterIP service", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", "  ports: [{port: 80, nodePort: 30080}]\n")},
			[]string{"svc.yaml:7:32: Service shop/web: spec.ports[0].nodePort: 30080: a service of type ClusterIP has no node ports"}},
		{"one node port on two TCP ports", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web",
			"  type: NodePort\n  ports:\n  - {name: a, port: 80, nodePort: 30080}\n  - {name: b, port: 81, nodePort: 30080}\n")},
			[]string{"svc.yaml:10:35: Service shop/web: spec.ports[1].nodePort: 30080 is given to another TCP port of the service too"}},
		{"dual stack required", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", "  ipFamilyPolicy: RequireDualStack\n  ports: [{port: 80}]\n")},
			[]string{"svc.yaml:7:19: Service shop/web: spec.ipFamilyPolicy: RequireDualStack: keelson's service network 10.43.0.0/16 is IPv4 only"}},
		{"an IPv6 family", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", "  ipFamilies: [IPv6]\n  ports: [{port: 80}]\n")},
			[]string{"svc.yaml:7:16: Service shop/web: spec.ipFamilies[0]: IPv6: keelson's service network 10.43.0.0/16 is IPv4 only"}},
		{"two cluster IPs", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", "  clusterIPs: [10.43.0.20, fd00::20]\n  ports: [{port: 80}]\n")},
			[]string{"svc.yaml:7:28: Service shop/web: spec.clusterIPs[1]: fd00::20: a service has one cluster IP"}},
		{"clusterIPs that disagree with clusterIP", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web", "  clusterIP: 10.43.0.20\n  clusterIPs: [10.43.0.21]\n  ports: [{port: 80}]\n")},
			[]string{"svc.yaml:8:16: Service shop/web: spec.clusterIPs[0]: 10.43.0.21 differs from spec.clusterIP 10.43.0.20"}},
		{"one node port on two TCP ports with a UDP one between", nil, map[string]string{"svc.yaml": serviceYAML("shop", "web",
			"  type: NodePort\n  ports:\n  - {name: a, port: 80, nodePort: 30080}\n  - {name: u, port: 80, protocol: UDP, nodePort: 30080}\n  - {name: b, port: 81, nodePort: 30080}\n")},
			[]string{"svc.yaml:11:35: Service shop/web: spec.ports[2].nodePort: 30080 is given to another TCP port of the service too"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := serviceSyncer(t)
			if tc.setup != nil {
				tc.setup(t, s.Store)
			}
			r := newRepo(t)
			tc.files["cm.yaml"] = configMap("other", "x")
			r.commit(tc.files)
			res, err := syncNow(t, s, NewLocalGit(r.dir, "main"))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if len(res.Errors) != len(tc.want) {
				t.Fatalf("errors %q, want %q", res.Errors, tc.want)
			}
			for i, want := range tc.want {
				if got := res.Errors[i].Error(); !strings.HasPrefix(got, want) {
					t.Errorf("error %d:\n got  %s\n want %s…", i, got, want)
				}
			}
			if owned := versions(t, s); len(owned) != 0 {
				t.Errorf("objects of a refused revision were written: %v", owned)
			}
		})
	}
}

// TestServiceCIDRExhausted: in a /28 (14 addresses, the API's and DNS's
// among them), a revision with more services than free addresses is
// refused, and the Sync's status says so.
func TestServiceCIDRExhausted(t *testing.T) {
	s := serviceSyncer(t)
	s.ServiceCIDR = mustCIDR(t, "10.96.0.0/28")
	r := newRepo(t)
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: s}
	files := map[string]string{}
	for i := range 11 {
		files[fmt.Sprintf("svc-%02d.yaml", i)] = serviceYAML("shop", fmt.Sprintf("s%02d", i), "  ports: [{port: 80}]\n")
	}
	r.commit(files)
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The allocator gives them 10.96.0.2-.9 and .11-.13: one is left, .14.
	addr := 2
	for i := range 11 {
		if addr == 10 {
			addr++
		}
		allocate(t, s.Store, "shop", fmt.Sprintf("s%02d", i), fmt.Sprintf("10.96.0.%d", addr), nil)
		addr++
	}
	more := map[string]string{"cm.yaml": configMap("other", "x")}
	for _, name := range []string{"x", "y", "z"} {
		more["more-"+name+".yaml"] = serviceYAML("shop", name, "  ports: [{port: 80}]\n")
	}
	r.commit(more)
	if err := l.SyncOnce(t.Context()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	want := "more-x.yaml:1: Service shop/x: service CIDR 10.96.0.0/28 is full: 3 services of this revision need a cluster IP, 1 is free"
	if st := l.Status(); len(st.Errors) != 1 || st.Errors[0] != want {
		t.Fatalf("status errors %q, want %q", st.Errors, want)
	}
	sync := getSync(t, s.Store, "apps")
	if ready := condition(sync, keelsonv1alpha1.ConditionReady); ready.Status != metav1.ConditionFalse || len(sync.Status.Errors) != 1 || sync.Status.Errors[0] != want {
		t.Errorf("Sync status: Ready %+v, errors %q", ready, sync.Status.Errors)
	}
	if err := s.Store.Get(t.Context(), "default", "other", &corev1.ConfigMap{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the ConfigMap of the refused commit: %v", err)
	}
	// One fits; and a revision that deletes a service may give its
	// address to a new one.
	r.commit(map[string]string{"more-y.yaml": "", "more-z.yaml": ""})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"svc-00.yaml": "", "more-y.yaml": serviceYAML("shop", "y", "  clusterIP: 10.96.0.2\n  ports: [{port: 80}]\n")})
	if err := l.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.Created != 1 || st.Deleted != 1 {
		t.Errorf("status %+v, want s00 deleted and y created", st)
	}
}

// TestNodePortsExhausted: more node ports to allocate than free ones in the
// range is refused; the ports services already hold count as taken.
func TestNodePortsExhausted(t *testing.T) {
	s := serviceSyncer(t)
	s.NodePorts = mustPorts(t, "30000-30003")
	nodePortService(t, s.Store, "other", "x", 30001)
	r := newRepo(t)
	src := NewLocalGit(r.dir, "main")
	r.commit(map[string]string{"a.yaml": serviceYAML("shop", "a", "  type: NodePort\n  ports:\n  - {name: a, port: 80, nodePort: 30000}\n  - {name: b, port: 81}\n")})
	mustApply(t, s, src)
	r.commit(map[string]string{"b.yaml": serviceYAML("shop", "b", "  type: NodePort\n  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 81}\n")})
	res, err := syncNow(t, s, src)
	want := "b.yaml:1: Service shop/b: node port range 30000-30003 is full: 3 ports of this revision need a node port, 2 are free"
	if !errors.Is(err, ErrInvalid) || len(res.Errors) != 1 || res.Errors[0].Error() != want {
		t.Fatalf("err %v, errors %q; want %q", err, res.Errors, want)
	}
}

func TestWantedNodePorts(t *testing.T) {
	off := false
	port := func(n, np int32, proto corev1.Protocol) corev1.ServicePort {
		return corev1.ServicePort{Port: n, NodePort: np, Protocol: proto}
	}
	cases := []struct {
		name  string
		typ   corev1.ServiceType
		alloc *bool
		ports []corev1.ServicePort
		want  string // the node ports listed, 0 for one to allocate
	}{
		{"ClusterIP has none", corev1.ServiceTypeClusterIP, nil, []corev1.ServicePort{port(80, 30080, "TCP")}, "[]"},
		{"NodePort", corev1.ServiceTypeNodePort, nil, []corev1.ServicePort{port(80, 30080, "TCP"), port(81, 0, "TCP")}, "[30080 0]"},
		{"TCP and UDP of one number need one", corev1.ServiceTypeNodePort, nil, []corev1.ServicePort{port(53, 0, "TCP"), port(53, 0, "UDP")}, "[0]"},
		{"UDP shares the TCP port's", corev1.ServiceTypeNodePort, nil, []corev1.ServicePort{port(53, 0, "UDP"), port(53, 30053, "TCP")}, "[30053]"},
		{"a load balancer that allocates none", corev1.ServiceTypeLoadBalancer, &off, []corev1.ServicePort{port(80, 30080, "TCP"), port(81, 0, "TCP")}, "[30080]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Service{Spec: corev1.ServiceSpec{Type: tc.typ, AllocateLoadBalancerNodePorts: tc.alloc, Ports: tc.ports}}
			var got []int32
			for _, p := range wantedNodePorts(s) {
				got = append(got, p.port)
			}
			if g := fmt.Sprint(got); g != tc.want && !(tc.want == "[]" && got == nil) {
				t.Errorf("got %s, want %s", g, tc.want)
			}
		})
	}
}

// TestServiceNodePortOfTwoProtocols: one node port may serve a TCP and a UDP
// port of one service, as the allocator gives them.
func TestServiceNodePortOfTwoProtocols(t *testing.T) {
	s := serviceSyncer(t)
	r := newRepo(t)
	r.commit(map[string]string{"dns.yaml": serviceYAML("shop", "dns", "  type: NodePort\n  ports:\n  - {name: tcp, port: 53, protocol: TCP, nodePort: 30053}\n  - {name: udp, port: 53, protocol: UDP, nodePort: 30053}\n")})
	wantCounts(t, mustApply(t, s, NewLocalGit(r.dir, "main")), 1, 0, 0, 0)
}
