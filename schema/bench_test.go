package schema

import (
	"fmt"
	"testing"
	"testing/fstest"
)

const benchDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-%[1]d
  namespace: team-%[2]d
  labels: {app.kubernetes.io/name: web-%[1]d, tier: frontend}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web-%[1]d}
  template:
    metadata:
      labels: {app: web-%[1]d, tier: frontend}
    spec:
      containers:
      - name: web
        image: registry.example.com/web:1.%[1]d
        args: [--port=8080, --log-level=info]
        env:
        - {name: MODE, value: production}
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: web-%[1]d, key: password}}
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /ready, port: http}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: "1", memory: 256Mi}
        volumeMounts: [{name: config, mountPath: /etc/web}]
      volumes:
      - name: config
        configMap: {name: web-%[1]d}
`

const benchRest = `---
apiVersion: v1
kind: Service
metadata: {name: web-%[1]d, namespace: team-%[2]d}
spec:
  selector: {app: web-%[1]d}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-%[1]d, namespace: team-%[2]d}
data: {app.yaml: "listen: 8080\n", version: "%[1]d"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web-%[1]d, namespace: team-%[2]d}
`

// benchRepo is a generated repository of n apps, four documents each
// (Deployment, Service, ConfigMap, ServiceAccount), one file per app.
func benchRepo(n int) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := range n {
		fsys[fmt.Sprintf("team-%d/app-%d.yaml", i%20, i)] = &fstest.MapFile{Data: fmt.Appendf(nil, benchDeployment+benchRest, i, i%20)}
	}
	return fsys
}

// BenchmarkValidateDeployment is one Deployment, parsed, unified with its
// definition, decoded and defaulted, on one goroutine.
func BenchmarkValidateDeployment(b *testing.B) {
	s := testSchema(b)
	data := fmt.Appendf(nil, benchDeployment, 1, 1)
	for b.Loop() {
		if _, errs := s.ValidateFile("web.yaml", data); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkValidateDeploymentUnify is the same Deployment through whole-document
// unification only (the fast path off): what invalid documents cost, and
// the anchor the fast path is measured against.
func BenchmarkValidateDeploymentUnify(b *testing.B) {
	s := slowSchema(b)
	data := fmt.Appendf(nil, benchDeployment, 1, 1)
	for b.Loop() {
		if _, errs := s.ValidateFile("web.yaml", data); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkLoadRepo10k is cold validation of a 10,000-document repository
// with all cores, the figure behind BENCHMARKS.md's documents/s: each run
// starts from a newly compiled Schema (compiling its first engine is not
// timed; everything after it, including the other engines and the fast
// path's memo, is).
func BenchmarkLoadRepo10k(b *testing.B) {
	fsys := benchRepo(2500)
	for b.Loop() {
		b.StopTimer()
		s, err := New()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		objs, err := s.Load(b.Context(), fsys, nil)
		if err != nil || len(objs) != 10000 {
			b.Fatalf("%d objects, %v", len(objs), err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkLoadRepo10kOneFileChanged re-validates the repository after a
// commit that changed one file, with the cache of the previous run.
func BenchmarkLoadRepo10kOneFileChanged(b *testing.B) {
	s := testSchema(b)
	fsys := benchRepo(2500)
	cache := NewCache(100000)
	if _, err := s.Load(b.Context(), fsys, nil, WithCache(cache)); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		fsys["team-0/app-0.yaml"] = &fstest.MapFile{Data: fmt.Appendf(nil, benchDeployment+benchRest, 100000+i, 0)}
		objs, err := s.Load(b.Context(), fsys, nil, WithCache(cache))
		if err != nil || len(objs) != 10000 {
			b.Fatalf("%d objects, %v", len(objs), err)
		}
	}
}
