package render

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// withSplit makes parts of about n objects for the rest of the test (1<<30:
// never split).
func withSplit(t *testing.T, n int) {
	old := splitObjects
	splitObjects = n
	t.Cleanup(func() { splitObjects = old })
}

// renderWith renders fsys with parts of about n objects, and returns the
// output and how many builds krusty ran.
func renderWith(t *testing.T, r *Renderer, fsys fs.FS, n int) (*Output, int64) {
	t.Helper()
	old := splitObjects
	splitObjects = n
	defer func() { splitObjects = old }()
	before := kustomizeBuilds.Load()
	out := r.Render(t.Context(), fsys, nil)
	return out, kustomizeBuilds.Load() - before
}

// sameOutput fails unless split and whole hold the same objects, from the
// same files and lines, in the same order, and the same errors.
func sameOutput(t *testing.T, split, whole *Output) {
	t.Helper()
	if msg := compareOutput(split, whole); msg != "" {
		t.Fatal(msg)
	}
}

// compareOutput says how split and whole differ, "" when they do not.
func compareOutput(split, whole *Output) string {
	if fmt.Sprint(split.Errors) != fmt.Sprint(whole.Errors) {
		return fmt.Sprintf("errors differ:\nsplit: %v\nwhole: %v", split.Errors, whole.Errors)
	}
	if len(split.Docs) != len(whole.Docs) {
		return fmt.Sprintf("split built %d objects, whole %d", len(split.Docs), len(whole.Docs))
	}
	for i := range whole.Docs {
		s, w := split.Docs[i], whole.Docs[i]
		if s.File != w.File || s.Line != w.Line || s.Via != w.Via || string(s.Data) != string(w.Data) {
			return fmt.Sprintf("object %d differs:\nsplit %s:%d (%s)\n%s\nwhole %s:%d (%s)\n%s",
				i, s.File, s.Line, s.Via, s.Data, w.File, w.Line, w.Via, w.Data)
		}
	}
	if !slices.Equal(split.Skip, whole.Skip) {
		return fmt.Sprintf("skips differ:\nsplit %v\nwhole %v", split.Skip, whole.Skip)
	}
	return ""
}

// splitEqualsWhole renders fsys split in parts of about n objects and
// whole, compares them, and returns the split output and its builds.
func splitEqualsWhole(t *testing.T, fsys fs.FS, n int) (*Output, int64) {
	t.Helper()
	whole, _ := renderWith(t, New(Limits{}), fsys, 1<<30)
	split, builds := renderWith(t, New(Limits{}), fsys, n)
	sameOutput(t, split, whole)
	return split, builds
}

// shopTree is an overlay of an overlay of a base whose objects refer to each
// other in every way kustomize rewrites (config maps, secrets, service
// accounts, roles, claims, services, autoscalers, ingresses), with a List,
// a CRD and its custom resource, a namespace, multi-document files, and
// above it every transformer a split build allows: prefixes and suffixes at
// two levels, a namespace, labels with selectors, annotations, images,
// patches with targets (JSON and strategic merge), patches without one
// (naming objects by their first and by their current name), and
// patchesStrategicMerge.
func shopTree() map[string]string {
	f := map[string]string{}
	var res []string
	add := func(name, body string) {
		f["base/"+name] = body
		res = append(res, name)
	}
	for _, app := range []string{"web", "api"} {
		add(app+"-deploy.yaml", fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      serviceAccountName: %[1]s
      containers:
      - name: %[1]s
        image: shop/%[1]s:1
        envFrom:
        - configMapRef: {name: %[1]s-config}
        env:
        - name: PASSWORD
          valueFrom:
            secretKeyRef: {name: %[1]s-tls, key: password}
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: %[1]s-data}
`, app))
		add(app+"-svc.yaml", fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %[1]s\nspec:\n  selector: {app: %[1]s}\n  ports:\n  - port: 80\n", app))
		add(app+"-config.yaml", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-config\ndata:\n  mode: prod\n", app))
		add(app+"-secret.yaml", fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s-tls\nstringData:\n  password: x\n", app))
		add(app+"-rbac.yaml", fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: %[1]s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: %[1]s-reader
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %[1]s-reader
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: %[1]s-reader}
subjects:
- {kind: ServiceAccount, name: %[1]s, namespace: default}
`, app))
		add(app+"-pvc.yaml", fmt.Sprintf("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: %s-data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests: {storage: 1Gi}\n", app))
		add(app+"-hpa.yaml", fmt.Sprintf("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: %[1]s\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: %[1]s}\n  minReplicas: 1\n  maxReplicas: 3\n", app))
	}
	add("ingress.yaml", `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
`)
	add("list.yaml", `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: listed-a}, data: {k: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: listed-b}, data: {k: b}}
`)
	add("crd.yaml", `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`)
	add("widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n")
	add("namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n")
	for i := range 20 {
		add(fmt.Sprintf("worker-%02d.yaml", i), fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker-%[1]d
spec:
  selector:
    matchLabels: {app: worker-%[1]d}
  template:
    metadata:
      labels: {app: worker-%[1]d, role: worker}
    spec:
      containers:
      - name: worker
        image: shop/worker:1
        envFrom:
        - configMapRef: {name: %[2]s}
`, i, map[bool]string{true: "extra-cfg", false: fmt.Sprintf("worker-%d-config", i)}[i == 5]))
		add(fmt.Sprintf("worker-%02d-config.yaml", i), fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker-%d-config\ndata:\n  n: %q\n", i, fmt.Sprint(i)))
	}
	f["base/kustomization.yaml"] = "resources:\n- " + strings.Join(res, "\n- ") + "\n"
	f["mid/kustomization.yaml"] = `resources:
- ../base
namePrefix: mid-
commonLabels:
  tier: backend
images:
- name: shop/worker
  newTag: "2"
`
	f["overlays/prod/kustomization.yaml"] = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../mid
- extra.yaml
namePrefix: prod-
nameSuffix: -v1
namespace: prod
labels:
- pairs: {env: prod}
  includeSelectors: true
commonAnnotations:
  owner: shop-team
images:
- name: shop/web
  newName: registry.example/web
  newTag: "7"
patches:
- target: {kind: Deployment}
  patch: |-
    - op: replace
      path: /spec/replicas
      value: 2
- target: {labelSelector: role=worker}
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      template:
        spec:
          nodeSelector: {pool: workers}
- path: workers.yaml
patchesStrategicMerge:
- |-
  apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: api
  spec:
    minReadySeconds: 5
`
	f["overlays/prod/workers.yaml"] = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: mid-worker-3
spec:
  revisionHistoryLimit: 1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker-7
spec:
  revisionHistoryLimit: 2
`
	// A Deployment of the overlay refers to a base ConfigMap by the name
	// it has after the mid level's prefix.
	f["overlays/prod/extra.yaml"] = `apiVersion: v1
kind: ConfigMap
metadata:
  name: extra-cfg
data:
  extra: "yes"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: extra-worker
spec:
  selector:
    matchLabels: {app: extra-worker}
  template:
    metadata:
      labels: {app: extra-worker}
    spec:
      containers:
      - name: worker
        image: shop/worker:1
        envFrom:
        - configMapRef: {name: mid-worker-9-config}
`
	return f
}

// A split build of every kind of reference and transformer it allows is
// the same as the whole build, object for object, in the same order, for
// parts of every size down to one group of files each.
func TestSplitBuildsAsOne(t *testing.T) {
	for _, n := range []int{1, 2, 5, 13} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			out, builds := splitEqualsWhole(t, mapFS(shopTree()), n)
			if len(out.Errors) > 0 || len(out.Docs) < 60 {
				t.Fatalf("%d objects, errors %v", len(out.Docs), out.Errors)
			}
			if builds < 2 {
				t.Fatalf("%d builds: the tree was not split", builds)
			}
		})
	}
	// Asking for build metadata: origins and the managed-by label are of
	// each object; transformer annotations name every transformer of a
	// kustomization on every object, so such a build is whole.
	for _, tc := range []struct {
		metadata string
		split    bool
	}{
		{"[originAnnotations, managedByLabel]", true},
		{"[transformerAnnotations]", false},
	} {
		t.Run(tc.metadata, func(t *testing.T) {
			files := shopTree()
			files["overlays/prod/kustomization.yaml"] += "buildMetadata: " + tc.metadata + "\n"
			out, builds := splitEqualsWhole(t, mapFS(files), 2)
			if len(out.Errors) > 0 {
				t.Fatal(out.Errors)
			}
			if split := builds > 1; split != tc.split {
				t.Errorf("%d builds", builds)
			}
		})
	}
}

// The references a split build must keep in one part are kept: each
// referrer names its referent by the referent's final name.
func TestSplitKeepsReferences(t *testing.T) {
	out, _ := renderWith(t, New(Limits{}), mapFS(shopTree()), 1)
	all := ""
	for _, d := range out.Docs {
		all += string(d.Data) + "---\n"
	}
	for _, want := range []string{
		"configMapRef:\n            name: prod-mid-web-config-v1", // Deployment -> ConfigMap, two prefixes
		"claimName: prod-mid-api-data-v1",                         // -> PVC
		"serviceAccountName: prod-mid-web-v1",                     // -> ServiceAccount
		"configMapRef:\n            name: prod-extra-cfg-v1",      // base Deployment -> overlay's ConfigMap
		"service:\n            name: prod-mid-api-v1",             // Ingress -> Service
		"revisionHistoryLimit: 1", "revisionHistoryLimit: 2",      // patches without a target
		"minReadySeconds: 5",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the split build", want)
		}
	}
	if strings.Contains(all, "name: extra-cfg\n") {
		t.Error("worker-5 still refers to extra-cfg by its first name")
	}
}

// Random trees: objects of the kinds kustomize's name references rewrite,
// referring to each other (and to names nobody defines) across files and
// levels, under random prefixes, suffixes, namespaces and patches.
func TestSplitRandomTrees(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			fsys := randomTree(rand.New(rand.NewPCG(seed, 17)))
			out, _ := splitEqualsWhole(t, fsys, 1+int(seed%4))
			if len(out.Errors) > 0 {
				t.Fatalf("errors: %v", out.Errors)
			}
		})
	}
}

func randomTree(rng *rand.Rand) fstest.MapFS {
	f := map[string]string{}
	levels := []string{"base", "mid", "top"}
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("o%d", i))
	}
	var prefix, suffix [3]string
	for i, level := range levels {
		if rng.IntN(2) == 0 {
			prefix[i] = level + "-"
		}
		if rng.IntN(3) == 0 {
			suffix[i] = fmt.Sprint("-", i)
		}
	}
	pick := func() string {
		switch rng.IntN(6) {
		case 0:
			return "nobody"
		case 1: // by the name after the base's prefix
			return prefix[0] + names[rng.IntN(len(names))]
		}
		return names[rng.IntN(len(names))]
	}
	type deployment struct {
		name  string
		level int
	}
	var deployments []deployment // of the base and mid levels
	obj := func(name string, level int) string {
		switch rng.IntN(5) {
		case 0:
			return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  ref: %s\n", name, pick())
		case 1:
			return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n", name)
		case 2:
			return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  selector: {app: %s}\n", name, pick())
		case 3:
			return fmt.Sprintf("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: %s\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: %s}\n  maxReplicas: 2\n", name, pick())
		}
		if level < 2 {
			deployments = append(deployments, deployment{name, level})
		}
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      serviceAccountName: %s
      containers:
      - name: c
        image: img/%[1]s:1
        envFrom: [{configMapRef: {name: %s}}, {secretRef: {name: %s}}]
`, name, pick(), pick(), pick())
	}
	var resources [3][]string
	for i, name := range names {
		level := min(rng.IntN(5), 2) // most in the base
		file := fmt.Sprintf("f%02d.yaml", i)
		var body string
		switch rng.IntN(8) {
		case 0: // a List
			body = fmt.Sprintf("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: %s}, data: {ref: %s}}\n", name, pick())
		case 1, 2: // a second object of another name in the file
			body = obj(name, level) + "---\n" + obj(name+"-b", level)
		default:
			body = obj(name, level)
		}
		f[levels[level]+"/"+file] = body
		resources[level] = append(resources[level], file)
	}
	for i, level := range levels {
		var k strings.Builder
		k.WriteString("resources:\n")
		if i > 0 {
			k.WriteString("- ../" + levels[i-1] + "\n")
		}
		for _, r := range resources[i] {
			k.WriteString("- " + r + "\n")
		}
		if prefix[i] != "" {
			fmt.Fprintf(&k, "namePrefix: %s\n", prefix[i])
		}
		if suffix[i] != "" {
			fmt.Fprintf(&k, "nameSuffix: %q\n", suffix[i])
		}
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&k, "namespace: ns-%s\n", level)
		}
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&k, "commonLabels: {level: %s}\n", level)
		}
		if i == 2 {
			k.WriteString("patches:\n- target: {kind: Deployment}\n  patch: |-\n    - {op: add, path: /spec/replicas, value: 3}\n")
			// Patches without a target, naming Deployments of the lower
			// levels by their first names.
			for _, d := range deployments[:min(len(deployments), 3)] {
				fmt.Fprintf(&k, "- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: %s}\n    spec: {minReadySeconds: 7}\n", d.name)
			}
		}
		if i == 1 && len(deployments) > 3 {
			fmt.Fprintf(&k, "patchesStrategicMerge:\n- |-\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: %s}\n  spec: {paused: true}\n", deployments[3].name)
		}
		f[level+"/kustomization.yaml"] = k.String()
	}
	return mapFS(f)
}

// A tree that asks for what a split build does not allow is built whole,
// and one whose parts fail reports what the whole build reports.
func TestSplitOnlyWhatItAllows(t *testing.T) {
	base := func(extra string) map[string]string {
		f := map[string]string{}
		var res []string
		for i := range 8 {
			name := fmt.Sprintf("cm-%d.yaml", i)
			f["app/"+name] = fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d%d\nspec:\n  replicas: 1\n", i)
			res = append(res, name)
		}
		f["app/kustomization.yaml"] = "resources:\n- " + strings.Join(res, "\n- ") + "\n" + extra
		return f
	}
	for _, tc := range []struct {
		name, extra string
		files       map[string]string
	}{
		{"replicas", "replicas:\n- {name: d1, count: 3}\n", nil},
		{"generator", "configMapGenerator:\n- {name: gen, literals: [a=b]}\n", nil},
		{"replacements", "replacements:\n- source: {kind: Deployment, name: d1, fieldPath: metadata.name}\n  targets:\n  - select: {kind: Deployment, name: d2}\n    fieldPaths: [metadata.annotations.x]\n    options: {create: true}\n", nil},
		{"sortOptions", "sortOptions: {order: legacy}\n", nil},
		{"bases", "bases: []\n", nil},
		{"a field written twice", "namePrefix: a-\nnamePrefix: b-\n", nil},
		{"a field in other case", "NamePrefix: a-\n", nil},
		{"a JSON patch renaming", "patches:\n- target: {kind: Deployment}\n  patch: '[{\"op\": \"replace\", \"path\": \"/metadata/name\", \"value\": \"x\"}]'\n", nil},
		{"allowNameChange", "patches:\n- target: {kind: Deployment}\n  options: {allowNameChange: true}\n  patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: y}\n", nil},
		{"a patch without a target naming nothing", "patches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: nobody}\n    spec: {replicas: 2}\n", nil},
		{"a JSON patch without a target", "patches:\n- patch: '[{\"op\": \"add\", \"path\": \"/x\", \"value\": 1}]'\n", nil},
		{"a component", "components:\n- ../comp\n", map[string]string{"comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := base(tc.extra)
			for p, s := range tc.files {
				files[p] = s
			}
			fsys := mapFS(files)
			withSplit(t, 1)
			tr := newTree(fsys)
			if p := planSplit(tr, "app", "app/kustomization.yaml", &splitCache{}); p != nil {
				t.Fatalf("split in %d parts", len(p.parts))
			}
			splitEqualsWhole(t, fsys, 1)
		})
	}
	t.Run("one name in two files", func(t *testing.T) {
		files := base("")
		hpa := "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: same\nspec:\n  maxReplicas: 2\n"
		files["app/cm-2.yaml"], files["app/cm-6.yaml"] = hpa, hpa
		out, _ := splitEqualsWhole(t, mapFS(files), 1)
		if len(out.Errors) == 0 {
			t.Fatal("no error")
		}
	})
	t.Run("a part fails", func(t *testing.T) {
		files := base("")
		files["app/cm-3.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata: [not, a, map]\n"
		out, _ := splitEqualsWhole(t, mapFS(files), 1)
		if len(out.Errors) == 0 {
			t.Fatal("no error")
		}
	})
}

// A change to one file builds the one part holding it; a change that joins
// files of two parts builds both again and loses or doubles nothing.
func TestSplitRebuildsOnePart(t *testing.T) {
	files := shopTree()
	fsys := mapFS(files)
	r := New(Limits{})
	first, builds := renderWith(t, r, fsys, 2)
	if builds < 4 {
		t.Fatalf("%d builds at first", builds)
	}
	check := func(what string, want int64) {
		t.Helper()
		out, builds := renderWith(t, r, fsys, 2)
		whole, _ := renderWith(t, New(Limits{}), fsys, 1<<30)
		sameOutput(t, out, whole)
		if builds != want {
			t.Errorf("%s: %d builds, want %d", what, builds, want)
		}
	}
	check("unchanged", 0)
	fsys["base/worker-11-config.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker-11-config\ndata:\n  n: changed\n")}
	check("a base file", 1)
	fsys["overlays/prod/workers.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(files["overlays/prod/workers.yaml"], "revisionHistoryLimit: 2", "revisionHistoryLimit: 4", 1))}
	check("a patch without a target", 1)
	// worker-12 now refers to worker-13's config, whichever part that was.
	fsys["base/worker-12.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(files["base/worker-12.yaml"], "worker-12-config", "worker-13-config", 1))}
	out, _ := renderWith(t, r, fsys, 2)
	if len(out.Docs) != len(first.Docs) {
		t.Errorf("%d objects after joining two files, %d before", len(out.Docs), len(first.Docs))
	}
	check("after joining", 0)
}

// referencedKinds are the kinds of kustomize's own name reference
// configuration, read from the module's source: an upgrade of kustomize
// that adds one fails here until the split build knows it.
func TestSplitReferencedKinds(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kustomize/api").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal/konfig/builtinpluginconsts/namereference.go"))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, m := range regexp.MustCompile(`(?m)^- kind: (\w+)`).FindAllStringSubmatch(string(src), -1) {
		kinds = append(kinds, m[1])
	}
	var ours []string
	for k := range referencedKinds {
		ours = append(ours, k)
	}
	slices.Sort(kinds)
	slices.Sort(ours)
	if len(kinds) == 0 || !slices.Equal(kinds, ours) {
		t.Errorf("kustomize's name references refer to %v; the split build knows %v", kinds, ours)
	}
}
