package reconciler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestResolveTargetPort(t *testing.T) {
	sidecar := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "main", Ports: []corev1.ContainerPort{
			{Name: "web", ContainerPort: 8080},
			{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
		}}},
		InitContainers: []corev1.Container{
			{Name: "setup", Ports: []corev1.ContainerPort{{Name: "setup", ContainerPort: 7000}}},
			{Name: "proxy", RestartPolicy: &sidecar, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}}},
		},
	}}
	cases := []struct {
		name   string
		port   corev1.ServicePort
		want   int32
		wantOK bool
	}{
		{"number", corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(9090)}, 9090, true},
		{"none: the service port", corev1.ServicePort{Port: 80}, 80, true},
		{"name", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("web")}, 8080, true},
		{"name with the same protocol", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}, 5353, true},
		{"name of another protocol", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("dns")}, 0, false},
		{"name of a sidecar", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("proxy")}, 15001, true},
		{"name of a plain init container", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("setup")}, 0, false},
		{"name nobody defines", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("nope")}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := resolveTargetPort(pod, tc.port)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("resolveTargetPort = %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestPodEndpoint(t *testing.T) {
	now := metav1.Now()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}}
	publishing := svc.DeepCopy()
	publishing.Spec.PublishNotReadyAddresses = true
	pod := func(ready, terminating bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-0", UID: "u1"},
			Spec: corev1.PodSpec{NodeName: "n1", Hostname: "db-0", Subdomain: "db"}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		if ready {
			p.Status.Conditions[0].Status = corev1.ConditionTrue
		}
		if terminating {
			p.DeletionTimestamp = &now
		}
		return p
	}
	cases := []struct {
		name                        string
		svc                         *corev1.Service
		pod                         *corev1.Pod
		ready, serving, terminating bool
	}{
		{"ready", svc, pod(true, false), true, true, false},
		{"not ready", svc, pod(false, false), false, false, false},
		{"ready and terminating", svc, pod(true, true), false, true, true},
		{"not ready and terminating", svc, pod(false, true), false, false, true},
		{"not ready, published", publishing, pod(false, false), true, true, false},
		{"terminating, published", publishing, pod(false, true), true, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := podEndpoint(tc.svc, tc.pod, "10.42.0.5", "zone-a")
			c := e.Conditions
			got := fmt.Sprintf("ready=%v serving=%v terminating=%v", *c.Ready, *c.Serving, *c.Terminating)
			want := fmt.Sprintf("ready=%v serving=%v terminating=%v", tc.ready, tc.serving, tc.terminating)
			if got != want {
				t.Errorf("conditions %s, want %s", got, want)
			}
			if ptr.Deref(e.Hostname, "") != "db-0" || ptr.Deref(e.NodeName, "") != "n1" || ptr.Deref(e.Zone, "") != "zone-a" {
				t.Errorf("hostname %v node %v zone %v", e.Hostname, e.NodeName, e.Zone)
			}
			if r := e.TargetRef; r == nil || r.Kind != "Pod" || r.Name != "db-0" || r.Namespace != "default" || r.UID != "u1" {
				t.Errorf("targetRef %+v", r)
			}
		})
	}
	other := pod(true, false)
	other.Spec.Subdomain = "elsewhere"
	if e := podEndpoint(svc, other, "10.42.0.5", ""); e.Hostname != nil || e.Zone != nil {
		t.Errorf("hostname %v (subdomain of another service), zone %v (none)", e.Hostname, e.Zone)
	}
}

func TestPodIPv4(t *testing.T) {
	cases := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"podIPs first IPv4", corev1.Pod{Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "fd00::5"}, {IP: "10.42.0.5"}}}}, "10.42.0.5"},
		{"podIP", corev1.Pod{Status: corev1.PodStatus{PodIP: "10.42.0.6"}}, "10.42.0.6"},
		{"none yet", corev1.Pod{}, ""},
		{"host network, host's", corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true}, Status: corev1.PodStatus{HostIP: "192.168.1.4"}}, "192.168.1.4"},
		{"not host network, no host fallback", corev1.Pod{Status: corev1.PodStatus{HostIP: "192.168.1.4"}}, ""},
		{"garbage", corev1.Pod{Status: corev1.PodStatus{PodIP: "not-an-ip"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := podIPv4(&tc.pod); got != tc.want {
				t.Errorf("podIPv4 = %q, want %q", got, tc.want)
			}
		})
	}
}
