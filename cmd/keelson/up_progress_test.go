package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProgressTerminalRedraws(t *testing.T) {
	var term bytes.Buffer
	p := newProgress(&term, slog.New(slog.DiscardHandler), "keelson up")
	p.set(stepEtcd, true, "etcd ready")
	first := term.String()
	if !strings.HasPrefix(first, "\r\x1b[2K") {
		t.Errorf("the first drawing moves the cursor: %q", first)
	}
	if !strings.Contains(first, "  ✓ etcd ready\n") || !strings.Contains(first, "  … containerd starting\n") {
		t.Errorf("first drawing:\n%s", first)
	}
	lines := strings.Count(first, "\n")

	term.Reset()
	p.set(stepEtcd, true, "etcd ready")
	if term.Len() != 0 {
		t.Errorf("an unchanged step drew again: %q", term.String())
	}

	p.set(stepPods, true, "pods %d/%d running", 2, 2)
	p.setProblem("sync failed: deploy/a.yaml:3:1: …")
	again := term.String()
	if !strings.HasPrefix(again, fmt.Sprintf("\x1b[%dA", lines)) {
		t.Errorf("a redraw does not start %d lines up: %q", lines, again)
	}
	if !strings.Contains(again, "  ✓ pods 2/2 running\n") || !strings.Contains(again, "  ! sync failed: deploy/a.yaml:3:1: …\n") {
		t.Errorf("redraw:\n%s", again)
	}
}

func TestProgressFitsTheTerminal(t *testing.T) {
	var term bytes.Buffer
	p := newProgress(&term, slog.New(slog.DiscardHandler), "keelson up")
	p.width = 20
	p.set(stepSync, false, "revision 0123456789ab not applied (ValidationFailed): deploy/web.yaml:3:1: …")
	for _, l := range strings.Split(strings.TrimSuffix(term.String(), "\n"), "\n") {
		if n := len([]rune(strings.TrimPrefix(l, "\r\x1b[2K"))); n >= 20 {
			t.Errorf("line of %d characters on a terminal of 20 wraps and breaks the redraw: %q", n, l)
		}
	}
}

func TestProgressLogsWithoutTerminal(t *testing.T) {
	var log bytes.Buffer
	p := newProgress(nil, slog.New(slog.NewTextHandler(&log, nil)), "")
	p.set(stepSync, true, "revision %s applied: %d objects", "abc123", 12)
	p.set(stepSync, true, "revision %s applied: %d objects", "abc123", 12)
	p.set(stepPods, false, "pods 5/6 running")
	got := log.String()
	if n := strings.Count(got, "\n"); n != 2 {
		t.Errorf("%d log lines, want one per change (2):\n%s", n, got)
	}
	if !strings.Contains(got, `msg="revision abc123 applied: 12 objects" component=up`) || strings.Contains(got, "\x1b") {
		t.Errorf("log:\n%s", got)
	}
}

func TestServicesLine(t *testing.T) {
	svc := func(ns, name, ip string, nodePorts ...int32) corev1.Service {
		s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip}}
		for _, np := range nodePorts {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{NodePort: np})
		}
		return s
	}
	ext := svc("a", "ext", "")
	ext.Spec.Type = corev1.ServiceTypeExternalName
	dns := svc("a", "dns", "10.43.0.7", 30053, 30053)
	dns.Spec.Ports[0].Protocol, dns.Spec.Ports[1].Protocol = corev1.ProtocolUDP, corev1.ProtocolTCP
	cases := []struct {
		name string
		svcs []corev1.Service
		done bool
		want string
	}{
		{"none", nil, true, "services 0/0 with an address"},
		{"waiting", []corev1.Service{svc("a", "b", ""), svc("a", "c", "10.43.0.5"), ext}, false, "services 2/3 with an address"},
		{"node ports", []corev1.Service{svc("two-tier", "web", "10.43.0.9", 30080)}, true,
			"services 1/1 with an address; node ports: http://192.0.2.7:30080 (two-tier/web)"},
		{"many node ports", []corev1.Service{svc("a", "x", "10.43.0.9", 30001, 30002), svc("a", "y", "10.43.0.8", 30003, 30004)}, true,
			"services 2/2 with an address; node ports: http://192.0.2.7:30001 (a/x), http://192.0.2.7:30002 (a/x) and 2 more"},
		{"a UDP node port is no link", []corev1.Service{dns}, true,
			"services 1/1 with an address; node ports: http://192.0.2.7:30053 (a/dns)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done, got := servicesLine(tc.svcs, "192.0.2.7")
			if done != tc.done || got != tc.want {
				t.Errorf("servicesLine = %v, %q; want %v, %q", done, got, tc.done, tc.want)
			}
		})
	}
}

// The pods line counts the pods meant to run; the finished pods of Jobs are
// said apart and do not hold the line back.
func TestPodsLine(t *testing.T) {
	pod := func(phase corev1.PodPhase) corev1.Pod { return corev1.Pod{Status: corev1.PodStatus{Phase: phase}} }
	tests := []struct {
		pods []corev1.Pod
		done bool
		text string
	}{
		{nil, false, "pods 0/0 running"},
		{[]corev1.Pod{pod(corev1.PodRunning), pod(corev1.PodPending)}, false, "pods 1/2 running"},
		{[]corev1.Pod{pod(corev1.PodRunning), pod(corev1.PodSucceeded), pod(corev1.PodSucceeded)}, true, "pods 1/1 running, 2 completed"},
		{[]corev1.Pod{pod(corev1.PodRunning), pod(corev1.PodFailed), pod(corev1.PodSucceeded)}, true, "pods 1/1 running, 1 completed, 1 failed"},
	}
	for _, tt := range tests {
		if done, text := podsLine(tt.pods); done != tt.done || text != tt.text {
			t.Errorf("podsLine(%d pods) = %v %q, want %v %q", len(tt.pods), done, text, tt.done, tt.text)
		}
	}
}
