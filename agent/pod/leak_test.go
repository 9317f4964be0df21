package pod_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
)

// TestRunnerJoinsItsGoroutines: a pod's probe workers and image pull end
// with the pod, and a runner's Close ends those of every pod, leaving no
// goroutine behind.
func TestRunnerJoinsItsGoroutines(t *testing.T) {
	e := fastEnv(t)
	before := goleak.IgnoreCurrent()
	probed := ctr("probed", "sleep", "3600")
	probed.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	probed.LivenessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	p := newPod("probed", corev1.RestartPolicyAlways, probed)
	e.syncUntil(t, p, ready)
	// A second pod whose image pull never gets an answer in time: its pull
	// is under way when the pod goes.
	pulling := newPod("pulling", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: "192.0.2.1:5000/never:1", Command: []string{"sleep", "1"}})
	if _, err := e.runner.Sync(t.Context(), pulling); err != nil {
		t.Fatal(err)
	}
	if e.runner.Pods() != 2 {
		t.Fatalf("%d pods have a runner, want 2", e.runner.Pods())
	}
	for _, gone := range []*corev1.Pod{p, pulling} {
		if err := e.runner.Kill(context.Background(), gone, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.runner.Pods(); n != 0 {
		t.Errorf("%d pods keep a runner after they were killed", n)
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left after the pods were killed: %v", err)
	}

	// Close ends a running pod's probe workers; its container keeps running
	// for the next runner.
	again := newPod("again", corev1.RestartPolicyAlways, probed)
	cleanup(t, e, again)
	e.syncUntil(t, again, ready)
	e.runner.Close()
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}
