package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// profiler saves the server's Go profiles into the directory named by
// KEELSON_SCALE_PROFILE, for finding where a scale run's time and memory
// go; without it, it does nothing.
type profiler struct {
	dir    string
	client rest.Interface
}

func newProfiler(b *testing.B, cfg *rest.Config) *profiler {
	dir := os.Getenv("KEELSON_SCALE_PROFILE")
	if dir == "" {
		return &profiler{}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 0
	cfg.GroupVersion = nil
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	client, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &profiler{dir: dir, client: client}
}

// cpu saves a CPU profile of the next d as name, in the background; the
// returned function waits for it.
func (p *profiler) cpu(b *testing.B, name string, d time.Duration) (wait func()) {
	if p.dir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.save(b, b.Context(), name, "/debug/pprof/profile", "seconds", fmt.Sprint(int(d.Seconds())))
	}()
	return func() { <-done }
}

// heap saves a heap profile, after a garbage collection, as name.
func (p *profiler) heap(b *testing.B, name string) {
	if p.dir != "" {
		p.save(b, b.Context(), name, "/debug/pprof/heap", "gc", "1")
	}
}

func (p *profiler) save(b *testing.B, ctx context.Context, name, path, param, value string) {
	data, err := p.client.Get().AbsPath(path).Param(param, value).DoRaw(ctx)
	if err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	file := filepath.Join(p.dir, name)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	b.Logf("profile %s saved in %s", name, file)
}
