package gitsync

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKeepServiceFields(t *testing.T) {
	single := corev1.IPFamilyPolicySingleStack
	off := false
	port := func(name string, p, np int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: p, Protocol: corev1.ProtocolTCP, NodePort: np}
	}
	udp := func(p corev1.ServicePort) corev1.ServicePort {
		p.Protocol = corev1.ProtocolUDP
		return p
	}
	svc := func(typ corev1.ServiceType, ip string, ports ...corev1.ServicePort) *corev1.Service {
		s := &corev1.Service{Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip, Ports: ports}}
		if allocatedIP(ip) || ip == corev1.ClusterIPNone {
			s.Spec.ClusterIPs, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy = []string{ip}, []corev1.IPFamily{corev1.IPv4Protocol}, &single
		}
		return s
	}
	// Git's side: no families, as a manifest leaves them.
	git := func(typ corev1.ServiceType, ip string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip, Ports: ports}}
	}
	allocated := svc(corev1.ServiceTypeNodePort, "10.43.0.20", port("http", 80, 30100), port("metrics", 9090, 30101))
	lb := func(policy corev1.ServiceExternalTrafficPolicy, hc int32) *corev1.Service {
		s := svc(corev1.ServiceTypeLoadBalancer, "10.43.0.20", port("http", 80, 30100))
		s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = policy, hc
		return s
	}
	gitLB := func(policy corev1.ServiceExternalTrafficPolicy) *corev1.Service {
		s := git(corev1.ServiceTypeLoadBalancer, "", port("http", 80, 0))
		s.Spec.ExternalTrafficPolicy = policy
		return s
	}
	cases := []struct {
		name       string
		git, cur   *corev1.Service
		ip         string
		families   bool
		nodePorts  []int32
		healthPort int32
	}{
		{"Git leaves everything empty", git(corev1.ServiceTypeNodePort, "", port("http", 80, 0), port("metrics", 9090, 0)), allocated,
			"10.43.0.20", true, []int32{30100, 30101}, 0},
		{"Git writes the same address", git(corev1.ServiceTypeNodePort, "10.43.0.20", port("http", 80, 0)), allocated,
			"10.43.0.20", true, []int32{30100}, 0},
		{"Git writes another address", git(corev1.ServiceTypeNodePort, "10.43.0.30", port("http", 80, 0)), allocated,
			"10.43.0.30", false, []int32{30100}, 0},
		{"headless stays headless", git(corev1.ServiceTypeClusterIP, "None"), svc(corev1.ServiceTypeClusterIP, "None"), "None", true, nil, 0},
		{"headless in Git is not given the address", git(corev1.ServiceTypeClusterIP, "None"), allocated, "None", false, nil, 0},
		{"an external name keeps nothing", git(corev1.ServiceTypeExternalName, ""), allocated, "", false, nil, 0},
		{"type ClusterIP gives node ports back", git(corev1.ServiceTypeClusterIP, "", port("http", 80, 0)), allocated,
			"10.43.0.20", true, []int32{0}, 0},
		{"by name, whatever the order", git(corev1.ServiceTypeNodePort, "", port("metrics", 9090, 0), port("http", 80, 0)), allocated,
			"10.43.0.20", true, []int32{30101, 30100}, 0},
		{"by number when renamed", git(corev1.ServiceTypeNodePort, "", port("web", 80, 0)), allocated,
			"10.43.0.20", true, []int32{30100}, 0},
		{"a new port gets none", git(corev1.ServiceTypeNodePort, "", port("web", 8080, 0)), allocated,
			"10.43.0.20", true, []int32{0}, 0},
		{"a node port Git gives another port is not given twice",
			git(corev1.ServiceTypeNodePort, "", port("http", 80, 0), port("admin", 81, 30100)), allocated,
			"10.43.0.20", true, []int32{0, 30100}, 0},
		{"a load balancer that allocates none keeps those it has", func() *corev1.Service {
			s := git(corev1.ServiceTypeLoadBalancer, "", port("http", 80, 0))
			s.Spec.AllocateLoadBalancerNodePorts = &off
			return s
		}(), allocated, "10.43.0.20", true, []int32{30100}, 0},
		{"a TCP and a UDP port share theirs", git(corev1.ServiceTypeNodePort, "", port("dns", 53, 0), udp(port("dns-udp", 53, 0))),
			svc(corev1.ServiceTypeNodePort, "10.43.0.20", port("dns", 53, 30053), udp(port("dns-udp", 53, 30053))),
			"10.43.0.20", true, []int32{30053, 30053}, 0},
		{"health check port, policy Local", gitLB(corev1.ServiceExternalTrafficPolicyLocal), lb(corev1.ServiceExternalTrafficPolicyLocal, 31000),
			"10.43.0.20", true, []int32{30100}, 31000},
		{"no health check port for policy Cluster", gitLB(corev1.ServiceExternalTrafficPolicyCluster), lb(corev1.ServiceExternalTrafficPolicyLocal, 31000),
			"10.43.0.20", true, []int32{30100}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.git
			keepOthersFields(w, tc.cur)
			if w.Spec.ClusterIP != tc.ip {
				t.Errorf("clusterIP %q, want %q", w.Spec.ClusterIP, tc.ip)
			}
			if got := len(w.Spec.ClusterIPs) == 1 && len(w.Spec.IPFamilies) == 1 && w.Spec.IPFamilyPolicy != nil; got != tc.families {
				t.Errorf("clusterIPs %v, families %v, policy %v; want kept: %t", w.Spec.ClusterIPs, w.Spec.IPFamilies, w.Spec.IPFamilyPolicy, tc.families)
			}
			var got []int32
			for _, p := range w.Spec.Ports {
				got = append(got, p.NodePort)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.nodePorts) {
				t.Errorf("node ports %v, want %v", got, tc.nodePorts)
			}
			if w.Spec.HealthCheckNodePort != tc.healthPort {
				t.Errorf("healthCheckNodePort %d, want %d", w.Spec.HealthCheckNodePort, tc.healthPort)
			}
		})
	}
}

// The binder's fields on a claim and a volume from Git stay: a sync neither
// reverts them nor counts them as drift; what Git writes wins.
func TestKeepBindingFields(t *testing.T) {
	bound := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"pv.kubernetes.io/bind-completed": "yes", "team": "db"}},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pv-1"},
	}
	git := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"team": "db"}}}
	keepOthersFields(git, bound)
	if git.Spec.VolumeName != "pv-1" || git.Annotations["pv.kubernetes.io/bind-completed"] != "yes" || len(git.Annotations) != 2 {
		t.Errorf("claim from Git after keep: volumeName %q, annotations %v", git.Spec.VolumeName, git.Annotations)
	}
	named := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-2"}}
	keepOthersFields(named, bound)
	if named.Spec.VolumeName != "pv-2" {
		t.Errorf("Git's volumeName replaced by %q", named.Spec.VolumeName)
	}

	ref := &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "db", Name: "data", UID: "u1", ResourceVersion: "7"}
	stored := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{ClaimRef: ref}}
	for _, tc := range []struct {
		name string
		git  *corev1.ObjectReference
		want string
	}{
		{"none in Git", nil, "db/data u1"},
		{"set aside in Git for that claim", &corev1.ObjectReference{Namespace: "db", Name: "data"}, "db/data u1"},
		{"set aside in Git for another", &corev1.ObjectReference{Namespace: "db", Name: "other"}, "db/other "},
	} {
		w := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{ClaimRef: tc.git}}
		keepOthersFields(w, stored)
		got := ""
		if r := w.Spec.ClaimRef; r != nil {
			got = r.Namespace + "/" + r.Name + " " + string(r.UID)
		}
		if got != tc.want {
			t.Errorf("%s: claimRef %q, want %q", tc.name, got, tc.want)
		}
	}
}
