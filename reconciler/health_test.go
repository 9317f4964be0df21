package reconciler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/internal/servicenet"
	"github.com/keelson/keelson/store"
)

func TestHealthOf(t *testing.T) {
	deploy := func(mut func(*appsv1.Deployment)) *appsv1.Deployment {
		d := newDeployment("web", 3, "web:1")
		d.Generation = 2
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
		if mut != nil {
			mut(d)
		}
		return d
	}
	rs := func(avail int32, failure bool) *appsv1.ReplicaSet {
		r := newRS("web", 2)
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
		want HealthStatus
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
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: ReasonProgressDeadline}}
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
			if got := HealthOf(tt.obj); got.Status != tt.want {
				t.Errorf("HealthOf = %+v, want %s", got, tt.want)
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
	allocated := &metav1.Condition{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionTrue, Reason: ReasonAllocated}
	taken := &metav1.Condition{Type: servicenet.ConditionIPAllocated, Status: metav1.ConditionFalse, Reason: ReasonClusterIPTaken,
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
			Status: metav1.ConditionFalse, Reason: ReasonServiceCIDRFull, Message: "no free address"}), want: Health{Degraded, "no free address"}},
		{name: "headless", obj: svc(corev1.ServiceTypeClusterIP, corev1.ClusterIPNone, 0, nil), want: Health{Status: Healthy}},
		{name: "external name", obj: svc(corev1.ServiceTypeExternalName, "", 0, nil), want: Health{Status: Healthy}},
		{name: "node port waiting", obj: svc(corev1.ServiceTypeNodePort, "10.43.3.4", 0, nil), want: Health{Progressing, "waiting for a node port"}},
		{name: "node port allocated", obj: svc(corev1.ServiceTypeNodePort, "10.43.3.4", 30080, allocated), want: Health{Status: Healthy}},
		{name: "endpoints condition is not ours", obj: svc(corev1.ServiceTypeClusterIP, "10.43.3.4", 0, &metav1.Condition{
			Type: servicenet.ConditionEndpointsReady, Status: metav1.ConditionFalse}), want: Health{Status: Healthy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HealthOf(tt.obj); got != tt.want {
				t.Errorf("HealthOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRollUp(t *testing.T) {
	tests := []struct {
		name string
		in   []HealthStatus
		want HealthStatus
	}{
		{name: "empty is healthy", want: Healthy},
		{name: "all healthy", in: []HealthStatus{Healthy, Healthy}, want: Healthy},
		{name: "suspended beats healthy", in: []HealthStatus{Healthy, Suspended}, want: Suspended},
		{name: "progressing beats suspended", in: []HealthStatus{Suspended, Progressing, Healthy}, want: Progressing},
		{name: "missing beats progressing", in: []HealthStatus{Progressing, Missing}, want: Missing},
		{name: "degraded beats missing", in: []HealthStatus{Degraded, Missing, Healthy}, want: Degraded},
		{name: "unsupported beats healthy", in: []HealthStatus{Healthy, Unsupported, Healthy}, want: Unsupported},
		{name: "unsupported beats suspended", in: []HealthStatus{Suspended, Unsupported}, want: Unsupported},
		{name: "progressing beats unsupported", in: []HealthStatus{Unsupported, Progressing}, want: Progressing},
		{name: "missing beats unsupported", in: []HealthStatus{Missing, Unsupported}, want: Missing},
		{name: "degraded beats unsupported", in: []HealthStatus{Unsupported, Degraded, Unsupported}, want: Degraded},
		{name: "unknown is worst", in: []HealthStatus{Degraded, Unknown, Unsupported}, want: Unknown},
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

// TestDeploymentHealthFollowsRollout checks health against a live rollout:
// Healthy when rolled out, Degraded past the deadline.
func TestDeploymentHealthFollowsRollout(t *testing.T) {
	env := newTestEnvWith(t, fakenodeRefusing("broken"))
	d := newDeployment("web", 2, "web:1")
	d.Spec.ProgressDeadlineSeconds = ptr.To(int32(1))
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	if h := HealthOf(d); h.Status != Healthy {
		t.Fatalf("rolled out deployment: %+v", h)
	}
	d.Spec.Template.Spec.Containers[0].Image = "broken"
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deployment Degraded", func() (bool, string) {
		h := HealthOf(env.getDeployment("web"))
		return h.Status == Degraded, string(h.Status) + ": " + h.Message
	})
}

func TestHealthOfObjects(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 2, "web:1")
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, env, "web", "web:1")
	deployGVK := appsv1.SchemeGroupVersion.WithKind("Deployment")
	refs := []ObjectRef{{GVK: deployGVK, Namespace: "default", Name: "web"}}
	all, each, err := HealthOfObjects(t.Context(), env.st, refs)
	if err != nil {
		t.Fatal(err)
	}
	if all.Status != Healthy || len(each) != 1 || each[0].Status != Healthy {
		t.Fatalf("rolled-out deployment: %+v %+v", all, each)
	}
	refs = append(refs, ObjectRef{GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Namespace: "default", Name: "absent"})
	all, each, err = HealthOfObjects(t.Context(), env.st, refs)
	if err != nil {
		t.Fatal(err)
	}
	if all.Status != Missing || each[1].Status != Missing {
		t.Fatalf("with an absent object: %+v %+v", all, each)
	}
}
