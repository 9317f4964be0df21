package reconciler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestSurgeAndUnavailable(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	tests := []struct {
		name                   string
		replicas               int32
		surge, unavail         *intstr.IntOrString
		wantSurge, wantUnavail int32
		wantErr                bool
	}{
		{name: "defaults 25% of 10: surge rounds up, unavailable down", replicas: 10, wantSurge: 3, wantUnavail: 2},
		{name: "defaults of 1", replicas: 1, wantSurge: 1, wantUnavail: 0},
		{name: "defaults of 4", replicas: 4, wantSurge: 1, wantUnavail: 1},
		{name: "integers", replicas: 10, surge: num(2), unavail: num(0), wantSurge: 2, wantUnavail: 0},
		{name: "both zero makes unavailable 1", replicas: 5, surge: num(0), unavail: num(0), wantSurge: 0, wantUnavail: 1},
		{name: "both zero percent", replicas: 3, surge: pct("0%"), unavail: pct("0%"), wantSurge: 0, wantUnavail: 1},
		{name: "percent rounding 33% of 10", replicas: 10, surge: pct("33%"), unavail: pct("33%"), wantSurge: 4, wantUnavail: 3},
		{name: "percent of 3: 50%", replicas: 3, surge: pct("50%"), unavail: pct("50%"), wantSurge: 2, wantUnavail: 1},
		{name: "100% surge", replicas: 7, surge: pct("100%"), unavail: num(0), wantSurge: 7, wantUnavail: 0},
		{name: "zero replicas", replicas: 0, wantSurge: 0, wantUnavail: 1},
		{name: "bad percent", replicas: 3, surge: pct("lots"), wantErr: true},
		{name: "negative", replicas: 3, surge: num(-1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, u, err := surgeAndUnavailable(tt.replicas, &appsv1.RollingUpdateDeployment{MaxSurge: tt.surge, MaxUnavailable: tt.unavail})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (s != tt.wantSurge || u != tt.wantUnavail) {
				t.Errorf("surge, unavailable = %d, %d; want %d, %d", s, u, tt.wantSurge, tt.wantUnavail)
			}
		})
	}
}

func TestNewReplicas(t *testing.T) {
	tests := []struct {
		name                        string
		replicas, surge, total, cur int32
		want                        int32
	}{
		{name: "fresh rollout surges", replicas: 10, surge: 3, total: 10, cur: 0, want: 3},
		{name: "no room left", replicas: 10, surge: 3, total: 13, cur: 3, want: 3},
		{name: "some room", replicas: 10, surge: 3, total: 11, cur: 3, want: 5},
		{name: "never above replicas", replicas: 10, surge: 3, total: 5, cur: 8, want: 10},
		{name: "scale down when above", replicas: 4, surge: 1, total: 6, cur: 6, want: 4},
		{name: "zero surge waits", replicas: 3, surge: 0, total: 3, cur: 0, want: 0},
		{name: "zero surge after old shrank", replicas: 3, surge: 0, total: 2, cur: 0, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newReplicas(tt.replicas, tt.surge, tt.total, tt.cur); got != tt.want {
				t.Errorf("newReplicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestScaleDownBudget(t *testing.T) {
	tests := []struct {
		name                                string
		replicas, maxUnavailable, available int32
		want                                int32
	}{
		{name: "all available, may drop maxUnavailable", replicas: 10, maxUnavailable: 2, available: 10, want: 2},
		{name: "surge pods available add budget", replicas: 10, maxUnavailable: 2, available: 13, want: 5},
		{name: "at the floor", replicas: 10, maxUnavailable: 2, available: 8, want: 0},
		{name: "below the floor", replicas: 10, maxUnavailable: 2, available: 5, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scaleDownBudget(tt.replicas, tt.maxUnavailable, tt.available); got != tt.want {
				t.Errorf("scaleDownBudget = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTemplateHash(t *testing.T) {
	a := podTemplate("web", "nginx:1")
	b := podTemplate("web", "nginx:1")
	b.Labels[PodTemplateHashLabel] = "whatever"
	c := podTemplate("web", "nginx:2")
	if templateHash(&a, nil) != templateHash(&b, nil) {
		t.Error("the hash label changed the hash")
	}
	if templateHash(&a, nil) == templateHash(&c, nil) {
		t.Error("different images, same hash")
	}
	if templateHash(&a, nil) == templateHash(&a, ptr.To(int32(1))) {
		t.Error("collisionCount did not change the hash")
	}
	if !sameTemplate(&a, &b) || sameTemplate(&a, &c) {
		t.Error("sameTemplate")
	}
	_ = corev1.PodTemplateSpec{}
}
