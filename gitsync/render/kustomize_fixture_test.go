package render

import (
	"os"
	"path/filepath"
	"testing"
)

// kustomizeFixture is a tree of kustomizations as people keep them: a base
// with a generated ConfigMap its Deployment refers to, a component, and two
// overlays using patches (strategic merge and JSON 6902, inline and from
// files), images, name prefix and suffix, namespace, labels, annotations,
// a secret generator and replacements.
var kustomizeFixture = map[string]string{
	"base/kustomization.yaml": `resources:
- deploy.yaml
- service.yaml
labels:
- pairs:
    app.kubernetes.io/part-of: shop
  includeSelectors: true
configMapGenerator:
- name: web-config
  files:
  - settings.properties
  literals:
  - MODE=base
`,
	"base/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: shop/web:1.0
        envFrom:
        - configMapRef:
            name: web-config
      volumes:
      - name: config
        configMap:
          name: web-config
`,
	"base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
`,
	"base/settings.properties": "color=blue\n",
	"components/audit/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
- audit.yaml
patches:
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      annotations:
        audit.example.com/enabled: "true"
`,
	"components/audit/audit.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: audit
data:
  level: full
`,
	"overlays/staging/kustomization.yaml": `resources:
- ../../base
namePrefix: staging-
namespace: staging
commonAnnotations:
  owner: team-web
transformers:
- team-label.yaml
images:
- name: shop/web
  newTag: "1.1"
patches:
- path: replicas.yaml
- target:
    kind: Service
    name: web
  path: port.json
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      template:
        spec:
          containers:
          - name: web
            env:
            - name: STAGE
              value: staging
`,
	"overlays/staging/replicas.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
`,
	"overlays/staging/team-label.yaml": `apiVersion: builtin
kind: LabelTransformer
metadata:
  name: team
labels:
  team: web
fieldSpecs:
- path: metadata/labels
  create: true
`,
	"overlays/staging/port.json": `[{"op": "replace", "path": "/spec/ports/0/port", "value": 8080}]`,
	"overlays/production/kustomization.yaml": `resources:
- ../../base
- extra.yaml
components:
- ../../components/audit
nameSuffix: -prod
namespace: production
commonLabels:
  env: production
images:
- name: shop/web
  newName: registry.example.com/shop/web
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
configMapGenerator:
- name: web-config
  behavior: merge
  literals:
  - MODE=production
secretGenerator:
- name: web-secret
  literals:
  - token=s3cret
patchesJson6902:
- target:
    group: apps
    version: v1
    kind: Deployment
    name: web
  patch: |-
    - op: replace
      path: /spec/replicas
      value: 5
replacements:
- source:
    kind: ConfigMap
    name: limits
    fieldPath: data.port
  targets:
  - select:
      kind: Service
      name: web
    fieldPaths:
    - spec.ports.0.targetPort
`,
	"overlays/production/extra.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: limits
data:
  port: "9090"
`,
}

// writeTree writes files under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// with returns a copy of files with more added or replaced.
func with(files map[string]string, more map[string]string) map[string]string {
	out := make(map[string]string, len(files)+len(more))
	for k, v := range files {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}
