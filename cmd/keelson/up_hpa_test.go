package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

// burnYAML is a Deployment whose pods keep a CPU busy until the Unix time
// end, then idle, and an autoscaler keeping them at half their 100m request,
// between 1 and 3 pods, that scales down at once (no stabilization window).
func burnYAML(end int64) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: scale}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: burn, namespace: scale}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %s
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'i=0; while :; do i=$((i+1)); if [ $((i %% 20000)) -eq 0 ] && [ $(date +%%s) -ge %d ]; then break; fi; done; echo idle; exec sleep 3600']
        resources: {requests: {cpu: 100m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burn, namespace: scale}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 0}
`, ociarchive.BusyboxRef, end)
}

// TestHPAOnContainerd: on real containers, an autoscaler scales a
// Deployment whose pods burn CPU from 1 to its maximum of 3 pods, from the
// usage the agent measures, then back to 1 once the pods idle; Git's
// replicas stay 1 throughout and the sync neither fights the autoscaler nor
// counts drift. keelson get shows the autoscaler as kubectl does.
func TestHPAOnContainerd(t *testing.T) {
	u := newUpFixture(t)
	end := time.Now().Add(90 * time.Second).Unix()
	commit(t, u.repo, "app/burn.yaml", burnYAML(end), "a CPU burner and its autoscaler")
	up := u.start(t, u.repo, "--path", "app", "--horizontal-pod-autoscaler-sync-period", "2s")
	u.waitPods(t, up, 1)
	c := u.client(t)
	replicas := func() (int32, string) {
		d, err := c.AppsV1().Deployments("scale").Get(t.Context(), "burn", metav1.GetOptions{})
		if err != nil {
			return -1, err.Error()
		}
		h, _ := c.AutoscalingV2().HorizontalPodAutoscalers("scale").Get(t.Context(), "burn", metav1.GetOptions{})
		return *d.Spec.Replicas, fmt.Sprintf("replicas %d, autoscaler %+v", *d.Spec.Replicas, h.Status)
	}
	eventuallyOut(t, "scaled up to 3", func() (string, bool) {
		n, s := replicas()
		return s, n == 3
	})
	if time.Now().Unix() >= end {
		t.Fatalf("scaled up only after the pods stopped burning")
	}
	eventuallyOut(t, "keelson get hpa", func() (string, bool) {
		out, err := u.keelson("get", "hpa", "-n", "scale")
		return out, err == nil && strings.Contains(out, "Deployment/burn") && strings.Contains(out, "cpu: ") && strings.Contains(out, "/50%")
	})
	eventuallyOut(t, "keelson status says who owns the replicas", func() (string, bool) {
		out, err := u.keelson("status")
		return out, err == nil && strings.Contains(out, "replicas follow their autoscaler, not Git, for Deployment scale/burn (HorizontalPodAutoscaler burn)")
	})
	time.Sleep(time.Until(time.Unix(end, 0)))
	eventuallyOut(t, "scaled back down to 1", func() (string, bool) {
		n, s := replicas()
		return s, n == 1
	})
	out, err := u.keelson("get", "events", "-n", "scale")
	if err != nil || strings.Count(out, "SuccessfulRescale") < 2 {
		t.Errorf("rescale events (%v):\n%s", err, out)
	}
	if st, err := u.keelson("status"); err != nil || !strings.Contains(st, "drift corrected: 0") {
		t.Errorf("the sync fought the autoscaler (%v):\n%s", err, st)
	}
}
