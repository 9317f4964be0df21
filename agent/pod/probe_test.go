package pod_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/agent/pod"
)

// fastEnv is an env whose restarts back off by 100ms, not 10s.
func fastEnv(t *testing.T) *env {
	e := newEnv(t, nil)
	cfg := e.cfg
	cfg.BackoffBase = 100 * time.Millisecond
	e.setRunner(t, cfg)
	return e
}

func ready(st corev1.PodStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestReadinessProbe(t *testing.T) {
	e := fastEnv(t)
	c := ctr("web", "sh", "-c", "mkdir -p /www; (sleep 1; echo ok > /www/ready) & exec httpd -f -p 8080 -h /www")
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}}
	p := newPod("readiness", corev1.RestartPolicyAlways, c)
	cleanup(t, e, p)
	sawNotReady := false
	e.syncUntil(t, p, ready, func(st corev1.PodStatus) {
		if st.Phase == corev1.PodRunning && !ready(st) {
			sawNotReady = true
		}
	})
	if !sawNotReady {
		t.Fatal("the pod was Ready before its readiness probe could pass")
	}
	if p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatal("a readiness failure restarted the container")
	}
}

func TestLivenessProbeRestarts(t *testing.T) {
	e := fastEnv(t)
	c := ctr("main", "sh", "-c", "touch /tmp/alive; sleep 1; rm /tmp/alive; exec sleep 3600")
	c.LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/alive"}}}}
	p := newPod("liveness", corev1.RestartPolicyAlways, c)
	p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	cleanup(t, e, p)
	st := e.syncUntil(t, p, func(st corev1.PodStatus) bool {
		return len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].RestartCount >= 1 && st.ContainerStatuses[0].State.Running != nil
	})
	if last := st.ContainerStatuses[0].LastTerminationState.Terminated; last == nil {
		t.Fatalf("restarted container has no last state: %+v", st.ContainerStatuses[0])
	}
}

func TestStartupProbeHoldsLiveness(t *testing.T) {
	e := fastEnv(t)
	// Slow to start: its port opens after 2s. Liveness alone (1 failure, every
	// second) would kill it first; the startup probe holds liveness back.
	c := ctr("slow", "sh", "-c", "sleep 2; exec httpd -f -p 9000")
	c.StartupProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 10,
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9000)}}}
	c.LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9000)}}}
	p := newPod("startup", corev1.RestartPolicyAlways, c)
	cleanup(t, e, p)
	e.syncUntil(t, p, func(st corev1.PodStatus) bool {
		cs := st.ContainerStatuses[0]
		return cs.Started != nil && *cs.Started && cs.Ready
	}, func(st corev1.PodStatus) {
		if st.ContainerStatuses[0].RestartCount > 0 {
			t.Fatal("liveness killed the container before its startup probe passed")
		}
	})
}

func TestLifecycleHooks(t *testing.T) {
	e := fastEnv(t)
	dir := t.TempDir()
	c := ctr("main", "sh", "-c", "until [ -f /out/post-start ]; do sleep 0.05; done; echo saw-post-start > /out/main; exec sleep 3600")
	c.Lifecycle = &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"touch", "/out/post-start"}}},
		PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo bye > /out/pre-stop"}}},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "out", MountPath: "/out"}}
	p := newPod("hooks", corev1.RestartPolicyAlways, c)
	p.Spec.Volumes = []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
	e.syncUntil(t, p, phase(corev1.PodRunning))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(dir, "main")); strings.TrimSpace(string(b)) == "saw-post-start" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the postStart hook did not run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.runner.Kill(t.Context(), p, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "pre-stop")); err != nil || strings.TrimSpace(string(b)) != "bye" {
		t.Fatalf("the preStop hook did not run before the stop: %q %v", b, err)
	}
}

// TestCrashLoopBackOffTiming: each restart waits at least the back-off, which
// doubles: base, 2×base, 4×base after each exit. Times are the runtime's own
// (nanosecond) start and exit times of each attempt.
func TestCrashLoopBackOffTiming(t *testing.T) {
	e := fastEnv(t) // base 100ms
	p := newPod("crashloop", corev1.RestartPolicyAlways, ctr("main", "sh", "-c", "exit 1"))
	cleanup(t, e, p)
	started, exited := map[int]time.Time{}, map[int]time.Time{}
	e.syncUntil(t, p, func(st corev1.PodStatus) bool { return len(started) >= 4 }, func(corev1.PodStatus) {
		cs, err := e.rt.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Spec.PodName == p.Name && !c.StartedAt.IsZero() {
				started[c.Spec.Attempt] = c.StartedAt
				if !c.FinishedAt.IsZero() {
					exited[c.Spec.Attempt] = c.FinishedAt
				}
			}
		}
	})
	for attempt := 1; attempt < 4; attempt++ {
		want := (100 * time.Millisecond) << (attempt - 1)
		gap := started[attempt].Sub(exited[attempt-1])
		if exited[attempt-1].IsZero() || gap < want {
			t.Errorf("attempt %d started %s after attempt %d exited, want at least %s", attempt, gap, attempt-1, want)
		}
	}
}

// TestGRPCProbeAndHTTPHook: a hostNetwork pod (its IP is the node's,
// 127.0.0.1 here) probed over gRPC health and given an httpGet postStart hook,
// both served by this test on loopback.
func TestGRPCProbeAndHTTPHook(t *testing.T) {
	e := fastEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING)
	go gs.Serve(l)
	defer gs.Stop()
	hooked := make(chan string, 1)
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hooked <- r.URL.Path:
		default:
		}
	}))
	defer hookSrv.Close()
	_, hookPort, _ := net.SplitHostPort(strings.TrimPrefix(hookSrv.URL, "http://"))

	c := ctr("main", "sleep", "3600")
	c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(l.Addr().(*net.TCPAddr).Port), Service: ptr.To("app")}}}
	c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/started", Port: intstr.Parse(hookPort)}}}
	p := newPod("grpc", corev1.RestartPolicyAlways, c)
	p.Spec.HostNetwork = true
	e.cfg.HostIP = "127.0.0.1"
	r, _ := pod.New(e.cfg)
	e.runner = r
	cleanup(t, e, p)
	e.syncUntil(t, p, phase(corev1.PodRunning))
	select {
	case path := <-hooked:
		if path != "/started" {
			t.Fatalf("postStart hook asked for %s", path)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the httpGet postStart hook never came")
	}
	time.Sleep(1500 * time.Millisecond)
	if st, _ := e.runner.Sync(t.Context(), p); ready(st) {
		t.Fatal("Ready while the gRPC health service says NOT_SERVING")
	}
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
	e.syncUntil(t, p, ready)
}
