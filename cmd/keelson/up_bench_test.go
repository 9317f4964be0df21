package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkUpIdleMemory is the resident memory of a keelson up process (etcd,
// API, sync, controllers, scheduler, agent; not containerd or the
// containers) running examples/hello, once it has settled: the sum of its
// pages in memory as /proc/<pid>/status reports VmRSS, after a minute idle.
func BenchmarkUpIdleMemory(b *testing.B) {
	for b.Loop() {
		u := newUpFixture(b)
		hello, err := os.ReadDir("../../examples/hello")
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range hello {
			if strings.HasSuffix(f.Name(), ".yaml") {
				data, err := os.ReadFile(filepath.Join("../../examples/hello", f.Name()))
				if err != nil {
					b.Fatal(err)
				}
				commit(b, u.repo, "hello/"+f.Name(), string(data), "hello: "+f.Name())
			}
		}
		up := u.start(b, filepath.Join(u.repo, "hello"))
		u.waitPods(b, up, 3)
		time.Sleep(time.Minute)
		rss := vmRSS(b, up.cmd.Process.Pid)
		b.ReportMetric(float64(rss)/(1<<20), "MB-rss")
		u.interrupt(b, up)
	}
}

// vmRSS reads a process's resident set size in bytes.
func vmRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
