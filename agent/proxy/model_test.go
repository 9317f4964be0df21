package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
)

func TestServicePorts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		svc     *corev1.Service
		want    []string // "ip:port/proto np=N aff=S itp=L etp=L"
		wantErr string
	}{
		{"cluster IP", service("a", "10.43.0.5"), []string{"10.43.0.5:80/TCP np=0 aff=0 itp=false etp=false"}, ""},
		{"headless", service("a", "None"), nil, ""},
		{"not allocated yet", service("a", ""), nil, ""},
		{"external name", service("a", "10.43.0.5", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }), nil, ""},
		{"bad cluster IP", service("a", "10.43.0"), nil, `spec.clusterIP "10.43.0"`},
		{"address refused by the allocator", service("a", "10.43.0.5", func(s *corev1.Service) {
			s.Status.Conditions = []metav1.Condition{{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionFalse, Reason: "ClusterIPTaken"}}
		}), nil, ""},
		{"address held", service("a", "10.43.0.5", func(s *corev1.Service) {
			s.Status.Conditions = []metav1.Condition{{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionTrue, Reason: "Allocated"}}
		}), []string{"10.43.0.5:80/TCP np=0 aff=0 itp=false etp=false"}, ""},
		{"IPv6 only", service("a", "fd00::5"), nil, ""},
		{"dual stack, IPv4 second", service("a", "fd00::5", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"fd00::5", "10.43.0.5"} }),
			[]string{"10.43.0.5:80/TCP np=0 aff=0 itp=false etp=false"}, ""},
		{"node port, policies, affinity default", service("a", "10.43.0.5", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30001
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), []string{"10.43.0.5:80/TCP np=30001 aff=10800 itp=true etp=true"}, ""},
		{"node port ignored on a ClusterIP service", service("a", "10.43.0.5", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30001 }),
			[]string{"10.43.0.5:80/TCP np=0 aff=0 itp=false etp=false"}, ""},
		{"affinity timeout", service("a", "10.43.0.5", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
		}), []string{"10.43.0.5:80/TCP np=0 aff=60 itp=false etp=false"}, ""},
		{"several ports, one bad", service("a", "10.43.0.5", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports,
				corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				corev1.ServicePort{Name: "x", Port: 70000},
				corev1.ServicePort{Name: "y", Port: 9, Protocol: "ICMP"})
		}), []string{"10.43.0.5:80/TCP np=0 aff=0 itp=false etp=false", "10.43.0.5:53/UDP np=0 aff=0 itp=false etp=false"},
			`spec.ports[2]: port 70000 is out of range; spec.ports[3]: protocol "ICMP"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports, err := servicePorts(tc.svc)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			var got []string
			for _, p := range ports {
				got = append(got, fmt.Sprintf("%s np=%d aff=%d itp=%v etp=%v", netip.AddrPortFrom(p.ip, p.port).String()+"/"+string(p.proto), p.nodePort, p.affinity, p.internalLocal, p.externalLocal))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ports %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEndpointsAndCategories(t *testing.T) {
	sp := servicePort{ns: "default", name: "web", portName: "http", proto: corev1.ProtocolTCP}
	other := slice("web", corev1.ProtocolUDP, 9999, ready("10.42.0.99"))
	v6 := slice("web", corev1.ProtocolTCP, 8080, ready("fd00::1"))
	v6.AddressType = "IPv6"
	for _, tc := range []struct {
		name           string
		eps            []ep
		cluster, local []string
	}{
		{"ready ones", []ep{ready("10.42.0.2"), {ip: "10.42.0.3", node: otherNode, ready: true}, {ip: "10.42.0.4", node: thisNode}},
			[]string{"10.42.0.2:8080", "10.42.0.3:8080"}, []string{"10.42.0.2:8080"}},
		{"terminating when none is ready", []ep{{ip: "10.42.0.2", node: thisNode, terminating: true}, {ip: "10.42.0.3", node: otherNode}},
			[]string{"10.42.0.2:8080"}, []string{"10.42.0.2:8080"}},
		{"local falls back on its own", []ep{{ip: "10.42.0.2", node: otherNode, ready: true}, {ip: "10.42.0.3", node: thisNode, terminating: true}},
			[]string{"10.42.0.2:8080"}, []string{"10.42.0.3:8080"}},
		{"none", []ep{{ip: "10.42.0.2", node: thisNode}}, nil, nil},
		{"duplicate across slices", []ep{{ip: "10.42.0.2", node: thisNode}, ready("10.42.0.2")}, []string{"10.42.0.2:8080"}, []string{"10.42.0.2:8080"}},
		{"bad address", []ep{ready("10.42.0.300"), ready("10.42.0.2")}, []string{"10.42.0.2:8080"}, []string{"10.42.0.2:8080"}},
		{"unset conditions are ready and serving", []ep{{ip: "10.42.0.2", node: thisNode}}, []string{"10.42.0.2:8080"}, []string{"10.42.0.2:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := slice("web", corev1.ProtocolTCP, 8080, tc.eps...)
			if tc.name == "unset conditions are ready and serving" {
				s.Endpoints[0].Conditions = discoveryv1.EndpointConditions{}
			}
			var split []*discoveryv1.EndpointSlice
			if tc.name == "duplicate across slices" {
				a, b := slice("web", corev1.ProtocolTCP, 8080, tc.eps[0]), slice("web", corev1.ProtocolTCP, 8080, tc.eps[1])
				split = append(split, a, b)
			} else {
				split = append(split, s)
			}
			eps := endpointsFor(&sp, append(split, other, v6), thisNode)
			cluster, local := categorize(eps)
			if got := strs(cluster); !slices.Equal(got, tc.cluster) {
				t.Errorf("cluster %v, want %v", got, tc.cluster)
			}
			if got := strs(local); !slices.Equal(got, tc.local) {
				t.Errorf("local %v, want %v", got, tc.local)
			}
		})
	}
}

func strs(eps []endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.String())
	}
	return out
}

func TestPodRanges(t *testing.T) {
	nodes := []*corev1.Node{
		node("a", "10.42.0.0/24", ""), node("b", "10.42.1.0/24", ""), node("c", "10.42.3.0/24", ""),
		node("d", "10.42.3.128/25", ""), node("e", "not-a-cidr", ""), node("f", "fd00::/64", ""),
		{ObjectMeta: metav1.ObjectMeta{Name: "g"}},
	}
	rs, errs := podRanges(nodes)
	var got []string
	for _, r := range rs {
		got = append(got, r.start.String()+"-"+r.end.String())
	}
	if want := []string{"10.42.0.0-10.42.2.0", "10.42.3.0-10.42.4.0"}; !slices.Equal(got, want) {
		t.Errorf("ranges %v, want %v", got, want)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `node e: spec.podCIDR "not-a-cidr"`) {
		t.Errorf("errors %v, want one naming node e", errs)
	}
	back, ok := rangesFromElements(append(podCIDRElements(rs), nftables.SetElement{Key: []byte{0, 0, 0, 0}, IntervalEnd: true}))
	if !ok || !sameRanges(back, rs) {
		t.Errorf("elements read back as %v (%v), want %v", back, ok, rs)
	}
	if _, ok := rangesFromElements([]nftables.SetElement{{Key: []byte{10, 0, 0, 0}}}); ok {
		t.Error("a lone start element read as a range")
	}
}

func TestPodCIDRsChanged(t *testing.T) {
	base := node("a", "10.42.0.0/24", "192.168.77.1")
	for _, tc := range []struct {
		name string
		mod  func(n *corev1.Node)
		want bool
	}{
		{"status only", func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
			n.Status.Addresses = nil
		}, false},
		{"labels", func(n *corev1.Node) { n.Labels = map[string]string{"zone": "b"} }, false},
		{"pod CIDR", func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.42.9.0/24", []string{"10.42.9.0/24"} }, true},
		{"pod CIDRs only", func(n *corev1.Node) { n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, "fd00::/64") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base.DeepCopy()
			tc.mod(n)
			if got := podCIDRsChanged(base, n); got != tc.want {
				t.Errorf("podCIDRsChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEndpointChainNames(t *testing.T) {
	sp := servicePort{ns: "shop", name: "cart", portName: "", proto: corev1.ProtocolUDP}
	e := endpoint{ip: netip.MustParseAddr("10.42.3.7"), port: 5353}
	name := endpointChainName(&sp, e)
	if !strings.HasPrefix(name, "ep-") || !strings.HasSuffix(name, "-shop/cart/udp/__10.42.3.7/5353") {
		t.Errorf("endpoint chain name %q", name)
	}
	proto, addr, ok := parseEndpointChain(name)
	if !ok || proto != corev1.ProtocolUDP || addr.String() != "10.42.3.7:5353" {
		t.Errorf("parsed %q as %v %v %v", name, proto, addr, ok)
	}
	for _, bad := range []string{"svc-X-a/b/tcp/p", "ep-X-a/b__1.2.3.4/5", "ep-X-a/b/tcp/p__1.2.3/5", "ep-X-a/b/tcp/p__1.2.3.4/99999"} {
		if _, _, ok := parseEndpointChain(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
	long := servicePort{ns: strings.Repeat("n", 63), name: strings.Repeat("s", 63), portName: strings.Repeat("p", 15), proto: corev1.ProtocolSCTP}
	if n := len(affinitySetName(&long, endpoint{ip: netip.MustParseAddr("255.255.255.255"), port: 65535})); n > 255 {
		t.Errorf("the longest affinity set name has %d characters, more than nftables allows", n)
	}
}

func TestDigestOfMalformedUserdata(t *testing.T) {
	for _, ud := range [][]byte{nil, {0}, {0, 200, 'x'}, {5, 1, 'x', 0, 3, 'a', 'b'}} {
		if d := digestOf(ud); d != "" && d != "ab" {
			t.Errorf("digestOf(%v) = %q", ud, d)
		}
	}
	r := newRule().jump("x")
	if got := digestOf(r.userData()); got != r.digest() {
		t.Errorf("digest round trip: %q, want %q", got, r.digest())
	}
}
