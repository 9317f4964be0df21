package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkAgentProcessCPU is the CPU a keelson agent process uses at rest
// with 10, then 110 pods (a Deployment of busybox sleepers committed to
// Git), in % of one core over 30 s once the pods run and have been synced
// a few times (utime and stime of /proc/<pid>/stat), and its resident
// memory then. The server and containerd are other processes, not counted.
func BenchmarkAgentProcessCPU(b *testing.B) {
	for _, pods := range []int{10, 110} {
		b.Run(fmt.Sprintf("pods/%d", pods), func(b *testing.B) {
			c := startProcCluster(b)
			commit(b, c.repo, "deploy/sleepers.yaml", sleepersYAML(pods), "sleepers")
			eventuallyWithin(b, 5*time.Minute, fmt.Sprintf("%d pods running", pods), func() (string, bool) {
				out, err := c.keelson("get", "pods")
				return out, err == nil && strings.Count(out, "Running") == pods
			})
			time.Sleep(30 * time.Second) // the start's writes and the first resyncs pass
			for b.Loop() {
				t0, cpu0 := time.Now(), procCPU(b, c.agent.cmd.Process.Pid)
				time.Sleep(30 * time.Second)
				b.ReportMetric(100*float64(procCPU(b, c.agent.cmd.Process.Pid)-cpu0)/float64(time.Since(t0)), "cpu-%")
				b.ReportMetric(float64(vmRSS(b, c.agent.cmd.Process.Pid))/(1<<20), "MB-rss")
			}
		})
	}
}

func sleepersYAML(replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: sleepers}
spec:
  replicas: %d
  selector: {matchLabels: {app: sleepers}}
  template:
    metadata: {labels: {app: sleepers}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sleep, "86400"]
`, replicas)
}

// procCPU is a process's CPU time so far (user and system), from
// /proc/<pid>/stat in clock ticks of 1/100 s.
func procCPU(b testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	// The command name may hold spaces: fields count from after its ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// eventuallyWithin polls ok until it holds or the time is up; then it
// fails with ok's last output.
func eventuallyWithin(t testing.TB, d time.Duration, what string, ok func() (string, bool)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, done := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last output:\n%s", what, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
