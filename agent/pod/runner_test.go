package pod_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keelson/keelson/agent/network"
	"github.com/keelson/keelson/agent/pod"
	"github.com/keelson/keelson/agent/runtime"
	"github.com/keelson/keelson/agent/runtime/containerd"
	"github.com/keelson/keelson/agent/runtime/ociarchive"
)

func TestPodRunsAndReports(t *testing.T) {
	e := newEnv(t, nil)
	p := newPod("web", corev1.RestartPolicyAlways,
		ctr("web", "httpd", "-f", "-p", "8080", "-h", "/etc"),
		ctr("sidecar", "sh", "-c", "until wget -q -O /dev/null http://127.0.0.1:8080/hostname; do sleep 0.1; done; exec sleep 3600"))
	cleanup(t, e, p)
	st := e.syncUntil(t, p, func(st corev1.PodStatus) bool {
		return st.Phase == corev1.PodRunning && len(st.ContainerStatuses) == 2 && st.ContainerStatuses[0].Ready && st.ContainerStatuses[1].Ready
	})
	ip := net.ParseIP(st.PodIP)
	if _, cidr, _ := net.ParseCIDR(podCIDR); ip == nil || !cidr.Contains(ip) {
		t.Fatalf("pod IP %q is not in %s", st.PodIP, podCIDR)
	}
	if st.HostIP != "192.0.2.10" || st.StartTime == nil {
		t.Fatalf("hostIP %q startTime %v", st.HostIP, st.StartTime)
	}
	for _, cs := range st.ContainerStatuses {
		if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.ImageID == "" || cs.RestartCount != 0 || cs.State.Running == nil {
			t.Fatalf("container status %+v", cs)
		}
	}
	want := map[corev1.PodConditionType]corev1.ConditionStatus{corev1.PodReady: "True", corev1.ContainersReady: "True", corev1.PodInitialized: "True"}
	for _, c := range st.Conditions {
		if w, ok := want[c.Type]; ok && c.Status != w {
			t.Fatalf("condition %s is %s", c.Type, c.Status)
		}
	}

	// A runner that starts afresh (the agent restarted) adopts what runs.
	again, err := pod.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := again.Sync(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if st2.PodIP != st.PodIP || st2.ContainerStatuses[0].ContainerID != st.ContainerStatuses[0].ContainerID || st2.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("after restart: ip %s→%s, container %s→%s", st.PodIP, st2.PodIP, st.ContainerStatuses[0].ContainerID, st2.ContainerStatuses[0].ContainerID)
	}
	cs, _ := e.rt.List(t.Context())
	if len(cs) != 2 {
		t.Fatalf("%d containers after re-adoption, want 2 (no duplicates)", len(cs))
	}
}

func TestExitCodesAndPhases(t *testing.T) {
	e := newEnv(t, nil)
	failed := newPod("fails", corev1.RestartPolicyNever, ctr("main", "sh", "-c", "exit 3"))
	ok := newPod("succeeds", corev1.RestartPolicyOnFailure, ctr("main", "sh", "-c", "exit 0"))
	cleanup(t, e, failed)
	cleanup(t, e, ok)
	st := e.syncUntil(t, failed, phase(corev1.PodFailed))
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Fatalf("failed pod container state %+v", st.ContainerStatuses[0].State)
	}
	st = e.syncUntil(t, ok, phase(corev1.PodSucceeded))
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Fatalf("succeeded pod container state %+v", st.ContainerStatuses[0].State)
	}
}

// A finished pod is final: when its container is gone (removed behind the
// agent's back, or lost with containerd's state), a Sync neither starts it
// again nor changes its status, whatever the restart policy; a Job's pod
// must not run twice.
func TestFinishedPodIsFinal(t *testing.T) {
	e := newEnv(t, nil)
	p := newPod("done", corev1.RestartPolicyOnFailure, ctr("main", "sh", "-c", "exit 0"))
	cleanup(t, e, p)
	st := e.syncUntil(t, p, phase(corev1.PodSucceeded))
	cs, err := e.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Spec.PodUID == string(p.UID) {
			if err := e.rt.Remove(t.Context(), c.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	again, err := e.runner.Sync(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if again.Phase != corev1.PodSucceeded || again.ContainerStatuses[0].ContainerID != st.ContainerStatuses[0].ContainerID {
		t.Errorf("status after a Sync of the finished pod: %+v", again)
	}
	cs, _ = e.rt.List(t.Context())
	for _, c := range cs {
		if c.Spec.PodUID == string(p.UID) {
			t.Errorf("container %s started again for a finished pod", c.ID)
		}
	}
}

// TestOOMKilledPod: a container over its memory limit is killed by the
// kernel and its status says OOMKilled, as kubectl describe shows it;
// restarted, its last state keeps the reason.
func TestOOMKilledPod(t *testing.T) {
	e := newEnv(t, nil)
	// The agent follows the runtime's events: the OOM kill is one.
	go func() {
		for range e.rt.Exits(t.Context()) {
		}
	}()
	hog := ctr("hog", "sh", "-c", "head -c 100000000 /dev/zero | tail")
	limit := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	hog.Resources = corev1.ResourceRequirements{Limits: limit, Requests: limit}
	p := newPod("oom", corev1.RestartPolicyAlways, hog)
	cleanup(t, e, p)
	st := e.syncUntil(t, p, func(st corev1.PodStatus) bool {
		last := st.ContainerStatuses[0].LastTerminationState.Terminated
		return last != nil && last.Reason == "OOMKilled"
	})
	if last := st.ContainerStatuses[0].LastTerminationState.Terminated; last.ExitCode != 137 {
		t.Errorf("OOM-killed container's exit code %d, want 137", last.ExitCode)
	}
}

func TestRestartWithBackoff(t *testing.T) {
	e := newEnv(t, nil)
	p := newPod("crash", corev1.RestartPolicyAlways, ctr("main", "sh", "-c", "exit 2"))
	cleanup(t, e, p)
	st := e.syncUntil(t, p, func(st corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff"
	})
	last := st.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 2 || st.Phase != corev1.PodRunning {
		t.Fatalf("crash-looping pod: phase %s, last state %+v", st.Phase, st.ContainerStatuses[0].LastTerminationState)
	}
}

func TestInitContainersInOrder(t *testing.T) {
	e := newEnv(t, nil)
	p := newPod("init", corev1.RestartPolicyAlways, ctr("app", "sleep", "3600"))
	p.Spec.InitContainers = []corev1.Container{
		{Name: "first", Image: ociarchive.BusyboxRef, Command: []string{"sleep", "0.5"}},
		{Name: "second", Image: ociarchive.BusyboxRef, Command: []string{"true"}},
	}
	cleanup(t, e, p)
	e.syncUntil(t, p, phase(corev1.PodRunning), func(st corev1.PodStatus) {
		first, second := st.InitContainerStatuses[0], st.InitContainerStatuses[1]
		if second.ContainerID != "" && (first.State.Terminated == nil || first.State.Terminated.ExitCode != 0) {
			t.Fatalf("second init container exists while the first is %+v", first.State)
		}
		if st.ContainerStatuses[0].ContainerID != "" && (second.State.Terminated == nil || second.State.Terminated.ExitCode != 0) {
			t.Fatalf("app container started before init finished: %+v", second.State)
		}
	})
}

func TestEnvironment(t *testing.T) {
	lookup := objects{
		cms:     map[string]*corev1.ConfigMap{"default/cfg": {Data: map[string]string{"color": "blue", "size": "L"}}},
		secrets: map[string]*corev1.Secret{"default/creds": {Data: map[string][]byte{"password": []byte("s3cret")}}},
		services: []*corev1.Service{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-api"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.43.7.7", Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}},
		}},
	}
	e := newEnv(t, lookup)
	c := ctr("main", "sh", "-c", "env | sort; echo ARG=$(GREETING); exec sleep 3600")
	c.Args = nil
	c.Command = []string{"sh", "-c", "env | sort; echo ARG=$1; exec sleep 3600", "sh", "$(GREETING)"}
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
	c.Env = []corev1.EnvVar{
		{Name: "NAME", Value: "keelson"},
		{Name: "API", Value: "http://$(WEB_API_SERVICE_HOST):$(WEB_API_SERVICE_PORT_HTTP)/"},
		{Name: "GREETING", Value: "hello $(NAME)"},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "color"}}},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
	}
	p := newPod("env", corev1.RestartPolicyAlways, c)
	cleanup(t, e, p)
	st := e.syncUntil(t, p, phase(corev1.PodRunning))
	logPath := filepath.Join(e.cfg.RootDir, "pods", string(p.UID), "logs", "main_0.log")
	want := []string{"NAME=keelson", "GREETING=hello keelson", "POD=env", "NODE=node-1", "POD_IP=" + st.PodIP,
		"COLOR=blue", "PASSWORD=s3cret", "CFG_color=blue", "CFG_size=L", "ARG=hello keelson", "HOSTNAME=env",
		"API=http://10.43.7.7:80/", "WEB_API_SERVICE_HOST=10.43.7.7", "WEB_API_SERVICE_PORT=80", "WEB_API_PORT_53_UDP=udp://10.43.7.7:53"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(b), w+"\n") {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container environment lacks %q:\n%s", missing, b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	bad := newPod("badref", corev1.RestartPolicyAlways, ctr("main", "true"))
	bad.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}
	cleanup(t, e, bad)
	st = e.syncUntil(t, bad, func(st corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	if msg := st.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "nope") {
		t.Fatalf("config error does not name the missing ConfigMap: %q", msg)
	}
}

func TestBadImageAndCommand(t *testing.T) {
	e := newEnv(t, nil)
	noImage := newPod("noimage", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: "localhost/does-not-exist:1"})
	noImage.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	cleanup(t, e, noImage)
	st := e.syncUntil(t, noImage, func(st corev1.PodStatus) bool { return st.ContainerStatuses[0].State.Waiting != nil })
	if w := st.ContainerStatuses[0].State.Waiting; w.Reason != "ErrImageNeverPull" || st.Phase != corev1.PodPending {
		t.Fatalf("missing image: phase %s, waiting %+v", st.Phase, w)
	}

	noCmd := newPod("nocmd", corev1.RestartPolicyNever, ctr("main", "/no/such/binary"))
	cleanup(t, e, noCmd)
	st = e.syncUntil(t, noCmd, phase(corev1.PodFailed))
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "StartError" || !strings.Contains(term.Message, "/no/such/binary") {
		t.Fatalf("command not found: %+v", st.ContainerStatuses[0].State)
	}
}

func TestKillHonoursGraceAndCleansUp(t *testing.T) {
	e := newEnv(t, nil)
	p := newPod("graceful", corev1.RestartPolicyAlways,
		ctr("main", "sh", "-c", `trap "echo got TERM; exit 0" TERM; while true; do sleep 0.05; done`))
	e.syncUntil(t, p, phase(corev1.PodRunning))
	time.Sleep(200 * time.Millisecond) // the trap is set
	if err := e.runner.Kill(t.Context(), p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cs, err := e.rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("%d containers left after kill", len(cs))
	}
	if _, err := os.Stat(filepath.Join(e.cfg.RootDir, "pods", string(p.UID))); !os.IsNotExist(err) {
		t.Fatalf("pod dir left after kill: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.RootDir, "netns", string(p.UID))); !os.IsNotExist(err) {
		t.Fatalf("netns left after kill: %v", err)
	}
	if err := e.runner.Kill(t.Context(), p, time.Second); err != nil {
		t.Fatalf("second kill: %v", err)
	}
}

func TestKillOrphans(t *testing.T) {
	e := newEnv(t, nil)
	keep := newPod("keep", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	gone := newPod("gone", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	cleanup(t, e, keep)
	e.syncUntil(t, keep, phase(corev1.PodRunning))
	e.syncUntil(t, gone, phase(corev1.PodRunning))
	kill, err := e.runner.KillOrphans(t.Context(), map[string]bool{string(keep.UID): true}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := kill(); err != nil {
		t.Fatal(err)
	}
	cs, _ := e.rt.List(t.Context())
	if len(cs) != 1 || cs[0].Spec.PodName != "keep" {
		t.Fatalf("after orphan clean-up: %+v", cs)
	}
}

// nsOf starts the pod and returns, per container, the namespace link its
// process printed ("net:[4026532...]").
func nsOf(t *testing.T, e *env, p *corev1.Pod, kind string) map[string]string {
	t.Helper()
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].Command = []string{"sh", "-c", "readlink /proc/self/ns/" + kind + "; exec sleep 3600"}
	}
	cleanup(t, e, p)
	e.syncUntil(t, p, phase(corev1.PodRunning))
	out := map[string]string{}
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range p.Spec.Containers {
		path := filepath.Join(e.cfg.RootDir, "pods", string(p.UID), "logs", c.Name+"_0.log")
		for {
			b, _ := os.ReadFile(path)
			if s := strings.TrimSpace(string(b)); strings.HasPrefix(s, kind+":[") {
				out[c.Name] = s
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("container %s printed no %s namespace", c.Name, kind)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return out
}

func TestNamespaces(t *testing.T) {
	e := newEnv(t, nil)
	a := nsOf(t, e, newPod("ipc-a", corev1.RestartPolicyAlways, ctr("one"), ctr("two")), "ipc")
	b := nsOf(t, e, newPod("ipc-b", corev1.RestartPolicyAlways, ctr("one")), "ipc")
	if a["one"] != a["two"] {
		t.Fatalf("containers of one pod do not share IPC: %s vs %s", a["one"], a["two"])
	}
	if a["one"] == b["one"] {
		t.Fatalf("two pods share an IPC namespace: %s", a["one"])
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	hp := newPod("hostnet", corev1.RestartPolicyAlways, ctr("one"))
	hp.Spec.HostNetwork = true
	if got := nsOf(t, e, hp, "net")["one"]; got != host {
		t.Fatalf("hostNetwork pod is in %s, the node in %s", got, host)
	}
	pp := newPod("podnet", corev1.RestartPolicyAlways, ctr("one"))
	if got := nsOf(t, e, pp, "net")["one"]; got == host {
		t.Fatal("a pod without hostNetwork runs in the node's network namespace")
	}
}

// flakyNetwork fails the first set-ups, as a CNI plugin does when the bridge
// cannot be made yet, then passes through to the real network.
type flakyNetwork struct {
	pod.Network
	failures int
}

func (f *flakyNetwork) Setup(ctx context.Context, podID, netns string, ports []network.PortMapping) (net.IP, error) {
	if f.failures > 0 {
		f.failures--
		return nil, fmt.Errorf("plugin type=\"bridge\" failed (add): simulated failure")
	}
	return f.Network.Setup(ctx, podID, netns, ports)
}

func TestNetworkFailureKeepsPodPendingAndRetries(t *testing.T) {
	e := newEnv(t, nil)
	cfg := e.cfg
	cfg.Network = &flakyNetwork{Network: e.cfg.Network, failures: 2}
	e.setRunner(t, cfg)
	p := newPod("flaky", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	cleanup(t, e, p)
	st, err := e.runner.Sync(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	w := st.ContainerStatuses[0].State.Waiting
	if st.Phase != corev1.PodPending || w == nil || !strings.Contains(w.Message, "simulated failure") {
		t.Fatalf("after a CNI failure: phase %s, waiting %+v", st.Phase, w)
	}
	p.Status = st
	e.syncUntil(t, p, phase(corev1.PodRunning))
}

func TestImagePullBackOff(t *testing.T) {
	e := newEnv(t, nil)
	p := newPod("pullfail", corev1.RestartPolicyAlways, corev1.Container{Name: "main", Image: "localhost:1/nothing-here:1"})
	p.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	cleanup(t, e, p)
	var reasons []string
	e.syncUntil(t, p, func(st corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		if w != nil && (len(reasons) == 0 || reasons[len(reasons)-1] != w.Reason) {
			reasons = append(reasons, w.Reason)
		}
		return w != nil && w.Reason == "ImagePullBackOff"
	})
	want := []string{"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}
	if !slices.Equal(reasons, want) || p.Status.Phase != corev1.PodPending {
		t.Fatalf("reasons %v, phase %s: want %v (pulling, failed, backing off), pod Pending", reasons, p.Status.Phase, want)
	}
	if w := p.Status.ContainerStatuses[0].State.Waiting; !strings.Contains(w.Message, "connection refused") {
		t.Errorf("the back-off does not say why the pull failed: %q", w.Message)
	}
}

// TestAfterReboot: a reboot leaves containerd's containers but not their
// tasks, and no network namespace. The pod comes back: a new attempt runs in
// a new sandbox.
func TestAfterReboot(t *testing.T) {
	e := fastEnv(t)
	p := newPod("reboot", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	cleanup(t, e, p)
	st := e.syncUntil(t, p, phase(corev1.PodRunning))
	id := strings.TrimPrefix(st.ContainerStatuses[0].ContainerID, "containerd://")

	// What a reboot does: every process gone, containerd's state dir (tmpfs)
	// empty, the namespaces' bind mounts gone.
	for _, args := range [][]string{{"tasks", "kill", "-s", "SIGKILL", id}, {"tasks", "delete", "-f", id}} {
		out, err := exec.Command("ctr", append([]string{"--address", e.socket, "--namespace", "keelson"}, args...)...).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not found") {
			t.Fatalf("ctr %v: %v\n%s", args, err, out)
		}
	}
	nsDir := filepath.Join(e.cfg.RootDir, "netns")
	nss, _ := filepath.Glob(filepath.Join(nsDir, "*"))
	for _, ns := range nss {
		if err := network.RemoveNetNS(ns); err != nil {
			t.Fatal(err)
		}
	}
	p.Status = st
	st = e.syncUntil(t, p, func(st corev1.PodStatus) bool {
		cs := st.ContainerStatuses[0]
		return cs.RestartCount >= 1 && cs.State.Running != nil
	})
	if _, err := os.Stat(filepath.Join(nsDir, string(p.UID))); err != nil {
		t.Fatalf("the pod's network namespace was not made again: %v", err)
	}
	if st.PodIP == "" {
		t.Fatal("the pod has no IP after coming back")
	}
}

// failStart is a runtime whose Start fails: an agent killed between creating
// a container and starting it leaves the same behind.
type failStart struct{ *containerd.Runtime }

func (failStart) Start(context.Context, string) error { return errors.New("the agent was killed") }

// TestLeftoverCreatedContainerStarts: a container an earlier agent created
// and never started is started by the next agent, not left waiting in
// ContainerCreating, and is no restart.
func TestLeftoverCreatedContainerStarts(t *testing.T) {
	e := newEnv(t, nil)
	p := newPod("leftover", corev1.RestartPolicyAlways, ctr("main", "sleep", "3600"))
	cleanup(t, e, p)
	cfg := e.cfg
	cfg.Runtime = failStart{e.rt}
	before, err := pod.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(before.Close)
	if _, err := before.Sync(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	cs, err := e.rt.List(t.Context())
	if err != nil || len(cs) != 1 || cs[0].State != runtime.StateCreated {
		t.Fatalf("the earlier agent should leave one created container: %v, %+v", err, cs)
	}
	st := e.syncUntil(t, p, phase(corev1.PodRunning))
	if n := st.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("restart count %d: a container that never ran was counted as a restart", n)
	}
	if cs, _ := e.rt.List(t.Context()); len(cs) != 1 || cs[0].State != runtime.StateRunning {
		t.Errorf("containers after the new agent's sync: %+v", cs)
	}
}
