package reconciler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestStatefulSetHealth: HealthOf gives a StatefulSet Argo CD's rule,
// branch by branch; claim templates change nothing.
func TestStatefulSetHealth(t *testing.T) {
	// sts is a set of 2 replicas at generation 2, observed, all ready and
	// rolled out to revision db-1; each case changes what it tests.
	sts := func(change func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", Generation: 2},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2))},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, ReadyReplicas: 2, CurrentReplicas: 2, UpdatedReplicas: 2,
				CurrentRevision: "db-1", UpdateRevision: "db-1"}}
		change(s)
		return s
	}
	claims := []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
	partition := func(p int32) appsv1.StatefulSetUpdateStrategy {
		return appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(p)}}
	}
	tests := []struct {
		name string
		obj  *appsv1.StatefulSet
		want Health
	}{
		{name: "generation not observed", obj: sts(func(s *appsv1.StatefulSet) { s.Status.ObservedGeneration = 1 }),
			want: Health{Progressing, "Waiting for statefulset spec update to be observed..."}},
		// A set the controller has not seen yet has no status at all.
		{name: "never observed", obj: sts(func(s *appsv1.StatefulSet) { s.Generation = 0; s.Status = appsv1.StatefulSetStatus{} }),
			want: Health{Progressing, "Waiting for statefulset spec update to be observed..."}},
		{name: "pods not ready", obj: sts(func(s *appsv1.StatefulSet) { s.Status.ReadyReplicas = 0 }),
			want: Health{Progressing, "Waiting for 2 pods to be ready..."}},
		{name: "pods not ready with claim templates", obj: sts(func(s *appsv1.StatefulSet) {
			s.Status.ReadyReplicas = 1
			s.Spec.VolumeClaimTemplates = claims
		}), want: Health{Progressing, "Waiting for 1 pods to be ready..."}},
		{name: "all ready with claim templates", obj: sts(func(s *appsv1.StatefulSet) { s.Spec.VolumeClaimTemplates = claims }),
			want: Health{Healthy, "statefulset rolling update complete 2 pods at revision db-1..."}},
		{name: "replicas unset mean one", obj: sts(func(s *appsv1.StatefulSet) { s.Spec.Replicas = nil; s.Status.ReadyReplicas = 0 }),
			want: Health{Progressing, "Waiting for 1 pods to be ready..."}},
		// OnDelete waits for no rollout: pods of the old revision are healthy.
		{name: "on delete with an old revision", obj: sts(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			s.Status.UpdateRevision, s.Status.UpdatedReplicas = "db-2", 0
		}), want: Health{Healthy, "statefulset has 2 ready pods"}},
		{name: "partitioned rollout under way", obj: sts(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = partition(1)
			s.Status.UpdateRevision, s.Status.UpdatedReplicas = "db-2", 0
		}), want: Health{Progressing, "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated..."}},
		{name: "partitioned rollout complete", obj: sts(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = partition(1)
			s.Status.UpdateRevision, s.Status.UpdatedReplicas = "db-2", 1
		}), want: Health{Healthy, "partitioned roll out complete: 1 new pods have been updated..."}},
		{name: "partition above replicas", obj: sts(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = partition(5)
			s.Status.UpdateRevision, s.Status.UpdatedReplicas = "db-2", 0
		}), want: Health{Healthy, "partitioned roll out complete: 0 new pods have been updated..."}},
		// A partition of 0 is a plain rolling update.
		{name: "rolling update under way", obj: sts(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = partition(0)
			s.Status.UpdateRevision, s.Status.UpdatedReplicas = "db-2", 1
		}), want: Health{Progressing, "waiting for statefulset rolling update to complete 1 pods at revision db-2..."}},
		{name: "rolled out", obj: sts(func(*appsv1.StatefulSet) {}),
			want: Health{Healthy, "statefulset rolling update complete 2 pods at revision db-1..."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HealthOf(tt.obj); got != tt.want {
				t.Errorf("HealthOf = %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if got := HealthOf((*appsv1.StatefulSet)(nil)); got.Status != Missing {
		t.Errorf("absent: %+v, want Missing", got)
	}
}

// Volumes and claims by their phase; a claim's rule applies once keelson
// provisions claims (until then it is Unsupported, see
// TestHealthOfKindsNotActedOn), so it is checked through ruleHealth.
func TestVolumeAndClaimHealth(t *testing.T) {
	pv := func(phase corev1.PersistentVolumePhase, msg string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Status: corev1.PersistentVolumeStatus{Phase: phase, Message: msg}}
	}
	pvc := func(phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "db"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv"},
			Status: corev1.PersistentVolumeClaimStatus{Phase: phase}}
	}
	for _, tc := range []struct {
		name string
		got  Health
		want HealthStatus
	}{
		{"volume available", HealthOf(pv(corev1.VolumeAvailable, "")), Healthy},
		{"volume bound", HealthOf(pv(corev1.VolumeBound, "")), Healthy},
		{"volume released", HealthOf(pv(corev1.VolumeReleased, "")), Healthy},
		{"volume failed", HealthOf(pv(corev1.VolumeFailed, "reclaim policy Recycle is not supported")), Degraded},
		{"volume new", HealthOf(pv("", "")), Progressing},
		{"claim bound", ruleHealth(pvc(corev1.ClaimBound)), Healthy},
		{"claim pending", ruleHealth(pvc(corev1.ClaimPending)), Progressing},
		{"claim lost", ruleHealth(pvc(corev1.ClaimLost)), Degraded},
	} {
		if tc.got.Status != tc.want {
			t.Errorf("%s: %+v, want %s", tc.name, tc.got, tc.want)
		}
	}
	if h := HealthOf(pv(corev1.VolumeFailed, "reclaim policy Recycle is not supported")); h.Message != "reclaim policy Recycle is not supported" {
		t.Errorf("failed volume's message %q", h.Message)
	}
}
