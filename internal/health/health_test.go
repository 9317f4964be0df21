package health

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/ingressclass"
	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

func TestOf(t *testing.T) {
	deploy := func(mut func(*appsv1.Deployment)) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Generation: 2},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(3))}}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
		if mut != nil {
			mut(d)
		}
		return d
	}
	rs := func(avail int32, failure bool) *appsv1.ReplicaSet {
		r := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(2))}}
		r.Status.AvailableReplicas = avail
		if failure {
			r.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Message: "quota"}}
		}
		return r
	}
	pod := func(phase corev1.PodPhase, ready bool, waiting string) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: phase}}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		if waiting != "" {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting}}}}
		}
		return p
	}
	tests := []struct {
		name string
		obj  store.Object
		want Status
	}{
		{name: "missing", obj: nil, want: Missing},
		{name: "typed nil is missing", obj: (*appsv1.Deployment)(nil), want: Missing},
		{name: "deployment rolled out", obj: deploy(nil), want: Healthy},
		{name: "deployment paused", obj: deploy(func(d *appsv1.Deployment) { d.Spec.Paused = true }), want: Suspended},
		{name: "deployment generation not observed", obj: deploy(func(d *appsv1.Deployment) { d.Generation = 3 }), want: Progressing},
		{name: "deployment updating", obj: deploy(func(d *appsv1.Deployment) { d.Status.UpdatedReplicas = 1 }), want: Progressing},
		{name: "deployment old pods left", obj: deploy(func(d *appsv1.Deployment) { d.Status.Replicas = 4 }), want: Progressing},
		{name: "deployment unavailable", obj: deploy(func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 2 }), want: Progressing},
		{name: "deployment deadline exceeded", obj: deploy(func(d *appsv1.Deployment) {
			d.Status.UpdatedReplicas = 1
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: reasonProgressDeadline}}
		}), want: Degraded},
		{name: "replicaset available", obj: rs(2, false), want: Healthy},
		{name: "replicaset short", obj: rs(1, false), want: Progressing},
		{name: "replicaset failing", obj: rs(1, true), want: Degraded},
		{name: "pod pending", obj: pod(corev1.PodPending, false, ""), want: Progressing},
		{name: "pod ready", obj: pod(corev1.PodRunning, true, ""), want: Healthy},
		{name: "pod running not ready", obj: pod(corev1.PodRunning, false, ""), want: Progressing},
		{name: "pod crash looping", obj: pod(corev1.PodRunning, false, "CrashLoopBackOff"), want: Degraded},
		{name: "pod failed", obj: pod(corev1.PodFailed, false, ""), want: Degraded},
		{name: "pod succeeded", obj: pod(corev1.PodSucceeded, false, ""), want: Healthy},
		{name: "configmap exists", obj: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, want: Healthy},
		{name: "namespace terminating", obj: &corev1.Namespace{Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}, want: Progressing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.obj); got.Status != tt.want {
				t.Errorf("Of = %+v, want %s", got, tt.want)
			}
		})
	}
}

func TestServiceHealth(t *testing.T) {
	svc := func(typ corev1.ServiceType, clusterIP string, nodePort int32, cond *metav1.Condition) *corev1.Service {
		s := &corev1.Service{Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP,
			Ports: []corev1.ServicePort{{Port: 80, NodePort: nodePort}}}}
		if cond != nil {
			s.Status.Conditions = []metav1.Condition{*cond}
		}
		return s
	}
	allocated := &metav1.Condition{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionTrue, Reason: "Allocated"}
	taken := &metav1.Condition{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionFalse, Reason: "ClusterIPTaken",
		Message: "10.43.0.20 is held by service shop/cart"}
	tests := []struct {
		name string
		obj  *corev1.Service
		want Health
	}{
		{name: "allocated", obj: svc(corev1.ServiceTypeClusterIP, "10.43.3.4", 0, allocated), want: Health{Status: Healthy}},
		{name: "no cluster IP yet", obj: svc(corev1.ServiceTypeClusterIP, "", 0, nil), want: Health{Progressing, "waiting for a cluster IP"}},
		{name: "address taken", obj: svc(corev1.ServiceTypeClusterIP, "10.43.0.20", 0, taken), want: Health{Degraded, taken.Message}},
		{name: "cidr full, no address", obj: svc(corev1.ServiceTypeClusterIP, "", 0, &metav1.Condition{Type: servicenet.ConditionIPAllocated,
			Status: metav1.ConditionFalse, Reason: "ServiceCIDRFull", Message: "no free address"}), want: Health{Degraded, "no free address"}},
		{name: "headless", obj: svc(corev1.ServiceTypeClusterIP, corev1.ClusterIPNone, 0, nil), want: Health{Status: Healthy}},
		{name: "external name", obj: svc(corev1.ServiceTypeExternalName, "", 0, nil), want: Health{Status: Healthy}},
		{name: "node port waiting", obj: svc(corev1.ServiceTypeNodePort, "10.43.3.4", 0, nil), want: Health{Progressing, "waiting for a node port"}},
		{name: "node port allocated", obj: svc(corev1.ServiceTypeNodePort, "10.43.3.4", 30080, allocated), want: Health{Status: Healthy}},
		{name: "endpoints condition is not ours", obj: svc(corev1.ServiceTypeClusterIP, "10.43.3.4", 0, &metav1.Condition{
			Type: servicenet.ConditionEndpointsReady, Status: metav1.ConditionFalse}), want: Health{Status: Healthy}},
		{name: "load balancer waiting", obj: lb(nil, nil), want: Health{Progressing, "waiting for a load balancer address"}},
		{name: "load balancer with its address", obj: lb([]string{"10.99.0.4"}, nil), want: Health{Status: Healthy}},
		{name: "no cloud provider", obj: lb(nil, func(s *corev1.Service) {
			s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{Type: servicenet.ConditionLoadBalancer, Status: metav1.ConditionFalse,
				Reason: servicenet.ReasonNoCloudProvider, Message: "no cloud provider"})
		}), want: Health{Degraded, "no cloud provider"}},
		{name: "provider failing", obj: lb([]string{"10.99.0.4"}, func(s *corev1.Service) {
			s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{Type: servicenet.ConditionLoadBalancer, Status: metav1.ConditionFalse,
				Reason: servicenet.ReasonLoadBalancerFailed, Message: "pool 10.99.0.0/30 is exhausted"})
		}), want: Health{Degraded, "pool 10.99.0.0/30 is exhausted"}},
		{name: "class of another implementation", obj: lb(nil, func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/lb") }),
			want: Health{Unsupported, "keelson has no load balancer of class example.com/lb: nothing gives the service an address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.obj); got != tt.want {
				t.Errorf("Of = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// lb is a LoadBalancer service with its cluster IP and node port, and the
// load balancer addresses ips.
func lb(ips []string, mod func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.3.4",
		Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func TestIngressHealth(t *testing.T) {
	ing := func(class string, ips ...string) *networkingv1.Ingress {
		i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
		if class != "" {
			i.Spec.IngressClassName = ptr.To(class)
		}
		for _, ip := range ips {
			i.Status.LoadBalancer.Ingress = append(i.Status.LoadBalancer.Ingress, networkingv1.IngressLoadBalancerIngress{IP: ip})
		}
		return i
	}
	tests := []struct {
		name string
		obj  store.Object
		want Status
		msg  string
	}{
		{name: "default class, waiting", obj: ing(""), want: Progressing, msg: "waiting for the ingress proxy's addresses"},
		{name: "keelson's class, served", obj: ing("keelson", "192.168.1.10"), want: Healthy},
		{name: "another class", obj: ing("nginx"), want: Unsupported, msg: `no controller serves class "nginx"`},
		{name: "another class with an address", obj: ing("nginx", "192.168.1.10"), want: Healthy},
		{name: "keelson's class object", obj: &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "keelson"},
			Spec: networkingv1.IngressClassSpec{Controller: "keelson.dev/ingress"}}, want: Healthy},
		{name: "a class of another controller", obj: &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
			Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}, want: Unsupported, msg: `Ingresses of class "nginx" route no traffic`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Of(tt.obj)
			if got.Status != tt.want || !strings.Contains(got.Message, tt.msg) {
				t.Errorf("Of = %+v, want %s with %q", got, tt.want, tt.msg)
			}
		})
	}

	// With the cluster's classes at hand: a class of keelson's controller
	// under a name of its own is served, one of another controller's is
	// not, and an Ingress that names none is not keelson's while another
	// controller's class is the only default.
	internal := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "internal"},
		Spec: networkingv1.IngressClassSpec{Controller: ingressclass.Controller}}
	nginx := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{ingressclass.AnnotationDefault: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	hc := Context{IngressClasses: ingressclass.Map{"internal": internal, "nginx": nginx}}
	for obj, want := range map[*networkingv1.Ingress]Status{ing("internal"): Progressing, ing("nginx"): Unsupported, ing(""): Unsupported, ing("keelson"): Progressing} {
		if got := hc.OfKind(networkingv1.SchemeGroupVersion.WithKind("Ingress").GroupKind(), obj); got.Status != want {
			t.Errorf("class %q with the classes: %+v, want %s", ingressclass.ClassName(obj), got, want)
		}
	}
	if got := Of(ing("internal")); got.Status != Unsupported {
		t.Errorf("class internal without the classes: %+v, want Unsupported (the name alone does not say)", got)
	}
}

func TestRollUp(t *testing.T) {
	tests := []struct {
		name string
		in   []Status
		want Status
	}{
		{name: "empty is healthy", want: Healthy},
		{name: "all healthy", in: []Status{Healthy, Healthy}, want: Healthy},
		{name: "suspended beats healthy", in: []Status{Healthy, Suspended}, want: Suspended},
		{name: "progressing beats suspended", in: []Status{Suspended, Progressing, Healthy}, want: Progressing},
		{name: "missing beats progressing", in: []Status{Progressing, Missing}, want: Missing},
		{name: "degraded beats missing", in: []Status{Degraded, Missing, Healthy}, want: Degraded},
		{name: "unsupported beats healthy", in: []Status{Healthy, Unsupported, Healthy}, want: Unsupported},
		{name: "unsupported beats suspended", in: []Status{Suspended, Unsupported}, want: Unsupported},
		{name: "progressing beats unsupported", in: []Status{Unsupported, Progressing}, want: Progressing},
		{name: "missing beats unsupported", in: []Status{Missing, Unsupported}, want: Missing},
		{name: "degraded beats unsupported", in: []Status{Unsupported, Degraded, Unsupported}, want: Degraded},
		{name: "unknown is worst", in: []Status{Degraded, Unknown, Unsupported}, want: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs []Health
			for _, s := range tt.in {
				hs = append(hs, Health{Status: s})
			}
			if got := RollUp(hs...); got.Status != tt.want {
				t.Errorf("RollUp = %s, want %s", got.Status, tt.want)
			}
		})
	}
}

// A CronJob whose schedule or time zone does not parse never starts a Job:
// Degraded, in the words the CronJob controller uses for its events.
func TestCronJobScheduleHealth(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec batchv1.CronJobSpec
		want string
	}{
		{"schedule", batchv1.CronJobSpec{Schedule: "every day"},
			`unparseable schedule "every day": expected exactly 5 fields, found 2: [every day]: no Job is ever started`},
		{"time zone", batchv1.CronJobSpec{Schedule: "@daily", TimeZone: ptr.To("Mars/Olympus")},
			`invalid timeZone "Mars/Olympus": unknown time zone Mars/Olympus: no Job is ever started`},
	} {
		if got := Of(&batchv1.CronJob{Spec: tc.spec}); got != (Health{Degraded, tc.want}) {
			t.Errorf("%s: %+v\nwant Degraded: %s", tc.name, got, tc.want)
		}
	}
}
