package clusterdns

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/keelson/keelson/internal/servicenet"
)

// zoneObjects is a small cluster: a service with a cluster IP, a headless
// one with StatefulSet-style hostnames, one publishing unready endpoints,
// two ExternalNames and cluster DNS itself.
func zoneObjects() []runtime.Object {
	tcp := corev1.ProtocolTCP
	return []runtime.Object{
		svc("default", "web", "10.43.0.20", withPort("http", tcp, 80), withPort("metrics", tcp, 9090)),
		epSlice("default", "web-abc", "web", []discoveryv1.EndpointPort{slicePort("http", tcp, 8080)},
			ep{addr: "10.42.0.5", ready: true}, ep{addr: "10.42.0.6"}),
		svc("default", "db", corev1.ClusterIPNone, withPort("pg", tcp, 5432)),
		epSlice("default", "db-1", "db", []discoveryv1.EndpointPort{slicePort("pg", tcp, 5432)},
			ep{addr: "10.42.0.7", host: "db-0", ready: true}, ep{addr: "10.42.0.8", ready: true},
			ep{addr: "10.42.0.9", host: "db-2"}),
		svc("default", "db-all", corev1.ClusterIPNone, publishNotReady),
		epSlice("default", "db-all-1", "db-all", nil, ep{addr: "10.42.1.1"}),
		svc("default", "ext", "", externalName("www.example.com")),
		svc("default", "alias", "", externalName("web.default.svc.cluster.local")),
		svc("kube-system", "kube-dns", "10.43.0.10", withPort("dns", corev1.ProtocolUDP, 53)),
		svc("default", "dual", "10.43.0.40", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.43.0.40", "fd00::40"} }),
		svc("default", "squatter", "10.43.0.20", func(s *corev1.Service) {
			s.Status.Conditions = []metav1.Condition{{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionFalse, Reason: "ClusterIPTaken"}}
		}),
	}
}

// recordCase is one question and the answer expected, records written as
// dns.RR.String() writes them, SOA serials as 0.
type recordCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	answer []string
	extra  []string
	soa    string // owner of the SOA in the authority section; "" for none
}

const (
	zoneSOA = "cluster.local."
	revSOA  = "43.10.in-addr.arpa."
)

var recordCases = []recordCase{
	{name: "cluster IP", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
	{name: "a service whose address was refused has none", qname: "squatter.default.svc.cluster.local.", qtype: dns.TypeA, soa: zoneSOA},
	{name: "no AAAA of an IPv4 service", qname: "web.default.svc.cluster.local.", qtype: dns.TypeAAAA, soa: zoneSOA},
	{name: "other type is NODATA", qname: "web.default.svc.cluster.local.", qtype: dns.TypeMX, soa: zoneSOA},
	{name: "headless: ready endpoints only", qname: "db.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"db.default.svc.cluster.local. 5 IN A 10.42.0.7", "db.default.svc.cluster.local. 5 IN A 10.42.0.8"}},
	{name: "headless publishing unready endpoints", qname: "db-all.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"db-all.default.svc.cluster.local. 5 IN A 10.42.1.1"}},
	{name: "ExternalName", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME www.example.com."}},
	{name: "ExternalName CNAME query", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
		answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME www.example.com."}},
	{name: "ExternalName into the zone is followed", qname: "alias.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.", "web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
	{name: "SRV of a named port", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
		answer: []string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
		extra:  []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
	{name: "SRV of the service name", qname: "web.default.svc.cluster.local.", qtype: dns.TypeSRV,
		answer: []string{"web.default.svc.cluster.local. 5 IN SRV 0 50 80 web.default.svc.cluster.local.", "web.default.svc.cluster.local. 5 IN SRV 0 50 9090 web.default.svc.cluster.local."},
		extra:  []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
	{name: "SRV of a headless service's port", qname: "_pg._tcp.db.default.svc.cluster.local.", qtype: dns.TypeSRV,
		answer: []string{"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 10-42-0-8.db.default.svc.cluster.local.", "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local."},
		extra:  []string{"10-42-0-8.db.default.svc.cluster.local. 5 IN A 10.42.0.8", "db-0.db.default.svc.cluster.local. 5 IN A 10.42.0.7"}},
	{name: "SRV name asked for A", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeA, soa: zoneSOA},
	{name: "unknown port", qname: "_nope._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "protocol label above an SRV", qname: "_tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, soa: zoneSOA},
	{name: "endpoint hostname", qname: "db-0.db.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"db-0.db.default.svc.cluster.local. 5 IN A 10.42.0.7"}},
	{name: "endpoint dashed address", qname: "10-42-0-8.db.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"10-42-0-8.db.default.svc.cluster.local. 5 IN A 10.42.0.8"}},
	{name: "unready endpoint has no name", qname: "db-2.db.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "pod", qname: "10-42-0-9.default.pod.cluster.local.", qtype: dns.TypeA,
		answer: []string{"10-42-0-9.default.pod.cluster.local. 5 IN A 10.42.0.9"}},
	{name: "pod name that is no address", qname: "10-42-0-999.default.pod.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "PTR of a cluster IP", qname: "20.0.43.10.in-addr.arpa.", qtype: dns.TypePTR,
		answer: []string{"20.0.43.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."}},
	{name: "PTR of a headless endpoint", qname: "7.0.42.10.in-addr.arpa.", qtype: dns.TypePTR,
		answer: []string{"7.0.42.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."}},
	{name: "PTR of an endpoint of a cluster IP service", qname: "5.0.42.10.in-addr.arpa.", qtype: dns.TypePTR,
		answer: []string{"5.0.42.10.in-addr.arpa. 5 IN PTR 10-42-0-5.web.default.svc.cluster.local."}},
	{name: "dual-stack A", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeA,
		answer: []string{"dual.default.svc.cluster.local. 5 IN A 10.43.0.40"}},
	{name: "dual-stack AAAA", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeAAAA,
		answer: []string{"dual.default.svc.cluster.local. 5 IN AAAA fd00::40"}},
	{name: "PTR of an IPv6 cluster IP", qname: "0.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
		answer: []string{"0.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.default.svc.cluster.local."}},
	{name: "IPv6 pod", qname: "fd00--42-5.default.pod.cluster.local.", qtype: dns.TypeAAAA,
		answer: []string{"fd00--42-5.default.pod.cluster.local. 5 IN AAAA fd00::42:5"}},
	{name: "reverse zone SOA", qname: "43.10.in-addr.arpa.", qtype: dns.TypeSOA,
		answer: []string{"43.10.in-addr.arpa. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"}},
	{name: "name above addresses in the reverse zone", qname: "0.43.10.in-addr.arpa.", qtype: dns.TypePTR, soa: revSOA},
	{name: "PTR of a free service address", qname: "99.0.43.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: revSOA},
	{name: "unknown service", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "namespace with services", qname: "default.svc.cluster.local.", qtype: dns.TypeA, soa: zoneSOA},
	{name: "namespace without services", qname: "nons.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "pod label alone", qname: "pod.cluster.local.", qtype: dns.TypeA, soa: zoneSOA},
	{name: "namespace of pods", qname: "default.pod.cluster.local.", qtype: dns.TypeA, soa: zoneSOA},
	{name: "pod name with too many labels", qname: "a.10-42-0-9.default.pod.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "svc label alone", qname: "svc.cluster.local.", qtype: dns.TypeA, soa: zoneSOA},
	{name: "zone SOA", qname: "cluster.local.", qtype: dns.TypeSOA,
		answer: []string{"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"}},
	{name: "zone NS", qname: "cluster.local.", qtype: dns.TypeNS,
		answer: []string{"cluster.local. 5 IN NS ns.dns.cluster.local."},
		extra:  []string{"ns.dns.cluster.local. 5 IN A 10.43.0.10"}},
	{name: "name server address", qname: "ns.dns.cluster.local.", qtype: dns.TypeA,
		answer: []string{"ns.dns.cluster.local. 5 IN A 10.43.0.10"}},
	{name: "search-path junk", qname: "web.default.svc.cluster.local.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "other name in the zone", qname: "foo.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: zoneSOA},
	{name: "answer keeps the question's case", qname: "WeB.DeFault.SVC.Cluster.LOCAL.", qtype: dns.TypeA,
		answer: []string{"WeB.DeFault.SVC.Cluster.LOCAL. 5 IN A 10.43.0.20"}},
	{name: "forwarding off", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
}

func TestRecords(t *testing.T) {
	f := startServer(t, Config{}, zoneObjects()...)
	var srvNX, aOK float64
	for _, tc := range recordCases {
		for _, network := range []string{"udp", "udp-edns", "tcp"} {
			t.Run(tc.name+"/"+network, func(t *testing.T) {
				switch {
				case tc.qtype == dns.TypeSRV && tc.rcode == dns.RcodeNameError:
					srvNX++
				case tc.qtype == dns.TypeA && tc.rcode == dns.RcodeSuccess:
					aOK++
				}
				var edns uint16
				if network == "udp-edns" {
					network, edns = "udp", 1232
				}
				r := f.ask(t, network, tc.qname, tc.qtype, edns)
				checkAnswer(t, r, tc)
				if (r.IsEdns0() != nil) != (edns > 0) {
					t.Errorf("answer has OPT %v, query had %v", r.IsEdns0() != nil, edns > 0)
				}
			})
		}
	}
	if n := f.counter(t, "keelson_clusterdns_queries_total", map[string]string{"type": "A", "rcode": "NOERROR"}); n != aOK {
		t.Errorf("A NOERROR counted %v times, want %v", n, aOK)
	}
	if n := f.counter(t, "keelson_clusterdns_queries_total", map[string]string{"type": "SRV", "rcode": "NXDOMAIN"}); n != srvNX {
		t.Errorf("SRV NXDOMAIN counted %v times, want %v", n, srvNX)
	}
}

func checkAnswer(t *testing.T, r *dns.Msg, tc recordCase) {
	t.Helper()
	if r.Rcode != tc.rcode {
		t.Errorf("rcode %s, want %s", rcodeOf(r), rcodeName(tc.rcode))
	}
	if got := rrs(r.Answer); !slices.Equal(got, tc.answer) {
		t.Errorf("answer\n%q\nwant\n%q", got, tc.answer)
	}
	var extra []dns.RR
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	if got := rrs(extra); !slices.Equal(got, tc.extra) {
		t.Errorf("additional\n%q\nwant\n%q", got, tc.extra)
	}
	var soa string
	if len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA {
		soa = r.Ns[0].Header().Name
	} else if len(r.Ns) > 0 {
		t.Errorf("authority %q, want one SOA or nothing", rrs(r.Ns))
	}
	if soa != tc.soa {
		t.Errorf("SOA of %q in authority, want %q", soa, tc.soa)
	}
	if len(r.Question) != 1 || r.Question[0].Name != tc.qname {
		t.Errorf("question %v, want %s", r.Question, tc.qname)
	}
	if inZone := tc.rcode != dns.RcodeRefused; r.Authoritative != inZone {
		t.Errorf("authoritative %v, want %v", r.Authoritative, inZone)
	}
}

// TestReverseZoneOfAnUnalignedCIDR: a /12 service CIDR gets the reverse
// zone 10.in-addr.arpa., but only the names of its own addresses are
// answered here; those of the rest of 10.0.0.0/8 go upstream (REFUSED with
// forwarding off).
func TestReverseZoneOfAnUnalignedCIDR(t *testing.T) {
	const soa = "10.in-addr.arpa."
	f := startServer(t, Config{ServiceCIDR: "10.96.0.0/12"})
	for _, tc := range []recordCase{
		{name: "zone SOA", qname: soa, qtype: dns.TypeSOA,
			answer: []string{soa + " 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"}},
		{name: "free service address", qname: "5.0.96.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: soa},
		{name: "last address of the CIDR", qname: "255.255.111.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: soa},
		{name: "name above service addresses", qname: "97.10.in-addr.arpa.", qtype: dns.TypePTR, soa: soa},
		{name: "name below a service prefix", qname: "x.0.97.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, soa: soa},
		{name: "address outside the CIDR", qname: "5.0.42.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{name: "address just past the CIDR", qname: "0.0.112.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{name: "name above other addresses", qname: "42.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{name: "name below the zone apex", qname: "x.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAnswer(t, f.ask(t, "udp", tc.qname, tc.qtype, 0), tc)
		})
	}
}
