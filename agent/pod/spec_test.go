package pod

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/keelson/keelson/agent/runtime"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	cases := map[string]string{
		"plain":          "plain",
		"$(A)":           "1",
		"x$(A)y$(B)z":    "x1ytwoz",
		"$$(A)":          "$(A)",
		"$(MISSING)":     "$(MISSING)",
		"$(A":            "$(A",
		"cost $5":        "cost $5",
		"trailing $":     "trailing $",
		"$(A)$(A)$$$(B)": "11$two",
	}
	for in, want := range cases {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResources(t *testing.T) {
	q := resource.MustParse
	cases := []struct {
		name string
		in   corev1.ResourceRequirements
		want runtime.Resources
	}{
		{"none", corev1.ResourceRequirements{}, runtime.Resources{}},
		{"requests only", corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("250m"), "memory": q("64Mi")}},
			runtime.Resources{CPUShares: 256}},
		{"limits default requests", corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("500m"), "memory": q("128Mi")}},
			runtime.Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 128 << 20}},
		{"tiny cpu", corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("1m")}, Limits: corev1.ResourceList{"cpu": q("1m")}},
			runtime.Resources{CPUShares: 2, CPUQuota: 1000, CPUPeriod: 100000}},
		{"whole cpus", corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("2")}}, runtime.Resources{CPUShares: 2048}},
	}
	for _, tc := range cases {
		if got := resources(tc.in); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for attempt, w := range want {
		if got := backoff(10*time.Second, attempt); got != w {
			t.Errorf("backoff(%d) = %s, want %s", attempt, got, w)
		}
	}
}

func TestQOSClass(t *testing.T) {
	q := resource.MustParse
	mk := func(req, lim corev1.ResourceList) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}}}}
	}
	both := corev1.ResourceList{"cpu": q("100m"), "memory": q("64Mi")}
	cases := []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"nothing", mk(nil, nil), corev1.PodQOSBestEffort},
		{"limits only", mk(nil, both), corev1.PodQOSGuaranteed},
		{"equal", mk(both, both), corev1.PodQOSGuaranteed},
		{"requests only", mk(both, nil), corev1.PodQOSBurstable},
		{"lower requests", mk(corev1.ResourceList{"cpu": q("50m"), "memory": q("64Mi")}, both), corev1.PodQOSBurstable},
		{"memory limit only", mk(nil, corev1.ResourceList{"memory": q("64Mi")}), corev1.PodQOSBurstable},
	}
	for _, tc := range cases {
		if got := QOSClass(tc.pod); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
