package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const hostResolv = `# written by the network
domain corp.example
search lab.example corp.example
nameserver 192.0.2.53
nameserver 192.0.2.54
options edns0 timeout:2
sortlist 130.155.160.0/255.255.240.0
`

func TestResolvConf(t *testing.T) {
	file := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(file, []byte(hostResolv), 0o644); err != nil {
		t.Fatal(err)
	}
	ndots := "2"
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("d%02d.example", i)
	}
	cases := []struct {
		name       string
		clusterDNS []string
		spec       corev1.PodSpec
		want       string
	}{
		{"cluster first", []string{"10.43.0.10"}, corev1.PodSpec{},
			"search shop.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"cluster first, explicit", []string{"10.43.0.10"}, corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
			"search shop.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"host network takes the node's", []string{"10.43.0.10"}, corev1.PodSpec{HostNetwork: true},
			"search lab.example corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0 timeout:2\n"},
		{"cluster first with host net", []string{"10.43.0.10"}, corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet},
			"search shop.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"default", []string{"10.43.0.10"}, corev1.PodSpec{DNSPolicy: corev1.DNSDefault},
			"search lab.example corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0 timeout:2\n"},
		{"no cluster DNS falls back to the node's", nil, corev1.PodSpec{},
			"search lab.example corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0 timeout:2\n"},
		{"none takes dnsConfig alone", []string{"10.43.0.10"}, corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "rotate"}}}},
			"search a.example\nnameserver 1.1.1.1\noptions ndots:2 rotate\n"},
		{"dnsConfig merged into cluster first", []string{"10.43.0.10"}, corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"1.1.1.1", "10.43.0.10"}, Searches: []string{"cluster.local", "extra.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "edns0"}}}},
			"search shop.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example extra.example\nnameserver 10.43.0.10\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"},
		{"at most three nameservers", nil, corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8"}}},
			"search lab.example corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 1.1.1.1\noptions edns0 timeout:2\n"},
		{"at most 32 search domains", nil, corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Searches: many}},
			"search " + strings.Join(many[:32], " ") + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runner{cfg: Config{ResolvConf: file, ClusterDNS: tc.clusterDNS, ClusterDomain: "cluster.local"}}
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.spec}
			got, err := r.resolvConf(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestResolvConfMissingHostFile(t *testing.T) {
	r := &Runner{cfg: Config{ResolvConf: filepath.Join(t.TempDir(), "absent"), ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "cluster.local"}}
	got, err := r.resolvConf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n"; got != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, want)
	}
}

// TestResolvConfClusterSearchOnce: a node whose own search list names the
// cluster domain does not give pods that domain twice (the resolver would
// try it twice, and it counts against the search list's limits).
func TestResolvConfClusterSearchOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(file, []byte("search cluster.local corp.example\nnameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Runner{cfg: Config{ResolvConf: file, ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "cluster.local"}}
	got, err := r.resolvConf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "search ns.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"; got != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, want)
	}
}
