package reconciler

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodAvailable(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	readySince := func(ago time.Duration) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-ago))},
		}}}
	}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		minReady int32
		want     bool
		wait     time.Duration
	}{
		{name: "not ready", pod: &corev1.Pod{}, minReady: 0, want: false},
		{name: "ready, no minimum", pod: readySince(0), minReady: 0, want: true},
		{name: "ready long enough", pod: readySince(10 * time.Second), minReady: 10, want: true},
		{name: "ready too briefly", pod: readySince(4 * time.Second), minReady: 10, want: false, wait: 6 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, wait := podAvailable(tt.pod, tt.minReady, now)
			if ok != tt.want || wait != tt.wait {
				t.Errorf("podAvailable = %v, %s; want %v, %s", ok, wait, tt.want, tt.wait)
			}
		})
	}
}

func TestReplicaSetMinReadySeconds(t *testing.T) {
	env := newTestEnv(t)
	rs := newRS("web", 2)
	rs.Spec.MinReadySeconds = 3600
	if err := env.st.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready but not yet available", func() (bool, string) {
		cur := env.getRS("web")
		s := cur.Status
		return s.ReadyReplicas == 2 && s.AvailableReplicas == 0 && s.ObservedGeneration == cur.Generation, statusString(s)
	})
	if h := HealthOf(env.getRS("web")); h.Status != Progressing {
		t.Errorf("health %+v, want Progressing", h)
	}
}

func TestDeploymentInvalidStrategy(t *testing.T) {
	env := newTestEnv(t)
	d := newDeployment("web", 2, "web:1")
	bad := intstr.FromString("lots")
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &bad}
	if err := env.st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ReplicaFailure=True InvalidStrategy", func() (bool, string) {
		d = env.getDeployment("web")
		c := deployCondition(d.Status, appsv1.DeploymentReplicaFailure)
		return c != nil && c.Status == corev1.ConditionTrue && c.Reason == "InvalidStrategy", fmt.Sprintf("%+v", d.Status.Conditions)
	})
	good := intstr.FromInt32(1)
	d.Spec.Strategy.RollingUpdate.MaxSurge = &good
	if err := env.update(d); err != nil {
		t.Fatal(err)
	}
	d = waitRolledOut(t, env, "web", "web:1")
	if c := deployCondition(d.Status, appsv1.DeploymentReplicaFailure); c != nil {
		t.Errorf("ReplicaFailure left after the spec was fixed: %+v", c)
	}
}

func TestExpectations(t *testing.T) {
	e := newExpectations()
	now := time.Now()
	e.now = func() time.Time { return now }
	if !e.satisfied("a") {
		t.Fatal("nothing expected, yet not satisfied")
	}
	e.expectCreations("a", 2)
	e.expectDeletion("a", "u1")
	e.creationObserved("a")
	e.creationObserved("b")
	if e.satisfied("a") {
		t.Fatal("satisfied with one creation and one deletion unseen")
	}
	if !e.deleting("a", "u1") || e.deleting("a", "u2") {
		t.Error("deleting")
	}
	e.creationObserved("a")
	e.deletionObserved("a", "u1")
	if !e.satisfied("a") {
		t.Fatal("all seen, yet not satisfied")
	}
	e.expectCreations("a", 1)
	now = now.Add(expectationsTTL + time.Second)
	if !e.satisfied("a") {
		t.Fatal("expired expectations still block")
	}
}
