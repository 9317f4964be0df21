package clusterdns

import (
	"fmt"
	"slices"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/internal/servicenet"
)

// expectAnswer waits until a question gets the rcode and answer records.
func (f *fixture) expectAnswer(t *testing.T, network, qname string, qtype uint16, rcode int, answer ...string) {
	t.Helper()
	eventually(t, func() error {
		r := f.ask(t, network, qname, qtype, 0)
		if got := rrs(r.Answer); r.Rcode != rcode || !slices.Equal(got, answer) {
			return fmt.Errorf("%s %s %s: %s %q, want %s %q", network, qname, dns.TypeToString[qtype], rcodeOf(r), got, rcodeName(rcode), answer)
		}
		return nil
	})
}

// TestIndexFollowsServiceChanges adds, changes and deletes a service
// through the API the informers watch, and checks each change in answers
// over both transports.
func TestIndexFollowsServiceChanges(t *testing.T) {
	f := startServer(t, Config{})
	ctx := t.Context()
	services := f.cs.CoreV1().Services("shop")
	const name = "cart.shop.svc.cluster.local."
	tcp := corev1.ProtocolTCP

	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeNameError)
	s := svc("shop", "cart", "10.43.0.30", withPort("http", tcp, 80))
	if _, err := services.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeSuccess, name+" 5 IN A 10.43.0.30")
	f.expectAnswer(t, "tcp", "30.0.43.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "30.0.43.10.in-addr.arpa. 5 IN PTR "+name)

	// A changed port changes the SRV record.
	s.Spec.Ports[0].Port = 8080
	if _, err := services.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "tcp", "_http._tcp."+name, dns.TypeSRV, dns.RcodeSuccess, "_http._tcp."+name+" 5 IN SRV 0 100 8080 "+name)

	// Deleted, it takes its records with it.
	if err := services.Delete(ctx, "cart", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeNameError)
	f.expectAnswer(t, "udp", "30.0.43.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError)
}

// TestIndexFollowsSliceChanges adds, changes, moves and deletes the
// EndpointSlices of headless services.
func TestIndexFollowsSliceChanges(t *testing.T) {
	f := startServer(t, Config{})
	ctx := t.Context()
	services := f.cs.CoreV1().Services("shop")
	slicesAPI := f.cs.DiscoveryV1().EndpointSlices("shop")
	const name = "cart.shop.svc.cluster.local."
	if _, err := services.Create(ctx, svc("shop", "cart", corev1.ClusterIPNone), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeSuccess) // NODATA: no endpoint yet
	es := epSlice("shop", "cart-1", "cart", nil, ep{addr: "10.42.0.11", ready: true}, ep{addr: "10.42.0.12", host: "cart-1", ready: true})
	if _, err := slicesAPI.Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeSuccess, name+" 5 IN A 10.42.0.11", name+" 5 IN A 10.42.0.12")
	f.expectAnswer(t, "tcp", "cart-1."+name, dns.TypeA, dns.RcodeSuccess, "cart-1."+name+" 5 IN A 10.42.0.12")
	f.expectAnswer(t, "udp", "12.0.42.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "12.0.42.10.in-addr.arpa. 5 IN PTR cart-1."+name)

	// An endpoint turned unready leaves the answers and its names.
	ready := false
	es.Endpoints[1].Conditions.Ready = &ready
	if _, err := slicesAPI.Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeSuccess, name+" 5 IN A 10.42.0.11")
	f.expectAnswer(t, "udp", "cart-1."+name, dns.TypeA, dns.RcodeNameError)

	// A second slice adds to the first.
	es2 := epSlice("shop", "cart-2", "cart", nil, ep{addr: "10.42.0.13", ready: true})
	if _, err := slicesAPI.Create(ctx, es2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "tcp", name, dns.TypeA, dns.RcodeSuccess, name+" 5 IN A 10.42.0.11", name+" 5 IN A 10.42.0.13")

	// A slice relabelled to another service moves there.
	if _, err := services.Create(ctx, svc("shop", "other", corev1.ClusterIPNone), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	es2.Labels[servicenet.LabelServiceName] = "other"
	if _, err := slicesAPI.Update(ctx, es2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeSuccess, name+" 5 IN A 10.42.0.11")
	f.expectAnswer(t, "udp", "other.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "other.shop.svc.cluster.local. 5 IN A 10.42.0.13")

	// Deleted slices and services take their records with them.
	for _, n := range []string{"cart-1", "cart-2"} {
		if err := slicesAPI.Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeSuccess)
	f.expectAnswer(t, "udp", "other.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess)
	f.expectAnswer(t, "udp", "11.0.42.10.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused) // not ours any more: upstream's, and forwarding is off
	for _, n := range []string{"cart", "other"} {
		if err := services.Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f.expectAnswer(t, "tcp", name, dns.TypeA, dns.RcodeNameError)
	f.expectAnswer(t, "udp", "shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
}

// TestIndexSliceBeforeService: a slice seen before its service is used as
// soon as the service comes.
func TestIndexSliceBeforeService(t *testing.T) {
	f := startServer(t, Config{}, epSlice("ns", "db-x", "db", nil, ep{addr: "10.42.3.3", ready: true}))
	const name = "db.ns.svc.cluster.local."
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeNameError)
	if _, err := f.cs.CoreV1().Services("ns").Create(t.Context(), svc("ns", "db", corev1.ClusterIPNone), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.expectAnswer(t, "udp", name, dns.TypeA, dns.RcodeSuccess, name+" 5 IN A 10.42.3.3")
}

func TestSliceFrom(t *testing.T) {
	port := int32(80)
	badPort := int32(0)
	for _, tc := range []struct {
		name  string
		es    *discoveryv1.EndpointSlice
		addrs int
		ports int
		nil   bool
	}{
		{name: "no service label", es: &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4}, nil: true},
		{name: "FQDN slices are not served", es: func() *discoveryv1.EndpointSlice {
			es := epSlice("a", "b", "c", nil)
			es.AddressType = discoveryv1.AddressTypeFQDN
			return es
		}(), nil: true},
		{name: "bad addresses and ports are skipped", es: func() *discoveryv1.EndpointSlice {
			es := epSlice("a", "b", "c", []discoveryv1.EndpointPort{{Port: &port}, {Port: &badPort}, {}},
				ep{addr: "not-an-ip", ready: true}, ep{addr: "10.0.0.1", ready: true, host: "Not_A_Label"})
			return es
		}(), addrs: 1, ports: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sl := sliceFrom(tc.es)
			if (sl == nil) != tc.nil {
				t.Fatalf("sliceFrom = %v, want nil %v", sl, tc.nil)
			}
			if sl == nil {
				return
			}
			if len(sl.endpoints) != tc.addrs || len(sl.ports) != tc.ports {
				t.Errorf("%d endpoints, %d ports; want %d, %d", len(sl.endpoints), len(sl.ports), tc.addrs, tc.ports)
			}
			for _, e := range sl.endpoints {
				if e.hostname != "" {
					t.Errorf("hostname %q kept, not a DNS label", e.hostname)
				}
			}
		})
	}
}
