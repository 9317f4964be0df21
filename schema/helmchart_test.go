package schema

import (
	"encoding/json"
	"strings"
	"testing"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

func TestHelmChartValid(t *testing.T) {
	src := `apiVersion: keelson.dev/v1alpha1
kind: HelmChart
metadata:
  name: web
  namespace: shop
spec:
  chart: ../charts/web
  releaseName: web-prod
  targetNamespace: shop-web
  valuesFiles: [values/prod.yaml, values/eu.yaml]
  includeCRDs: false
  values:
    replicas: 3
    image: {tag: "1.2"}
    hosts: [a.example.com, b.example.com]
    enabled: true
    nothing: null
---
apiVersion: keelson.dev/v1alpha1
kind: HelmChart
metadata: {name: cache, namespace: shop}
spec:
  chart: redis
  repoURL: oci://registry.example.com/charts
  version: 19.x
`
	objs, errs := validate(t, "apps/web.yaml", src)
	if len(errs) > 0 || len(objs) != 2 {
		t.Fatalf("want two HelmCharts accepted, got %d and errors:\n%s", len(objs), strings.Join(errs, "\n"))
	}
	c, ok := objs[0].Object.(*keelsonv1alpha1.HelmChart)
	if !ok {
		t.Fatalf("decoded into %T, want *v1alpha1.HelmChart", objs[0].Object)
	}
	if objs[0].Namespace != "shop" || c.Spec.Chart != "../charts/web" || c.Spec.ReleaseName != "web-prod" ||
		c.Spec.TargetNamespace != "shop-web" || len(c.Spec.ValuesFiles) != 2 || c.Spec.IncludeCRDs == nil || *c.Spec.IncludeCRDs {
		t.Errorf("decoded %+v (namespace %q)", c.Spec, objs[0].Namespace)
	}
	var values map[string]any
	if c.Spec.Values == nil || json.Unmarshal(c.Spec.Values.Raw, &values) != nil {
		t.Fatalf("values not decoded: %+v", c.Spec.Values)
	}
	if values["replicas"] != float64(3) || values["image"].(map[string]any)["tag"] != "1.2" || len(values["hosts"].([]any)) != 2 {
		t.Errorf("values decoded as %v", values)
	}
	if r := objs[1].Object.(*keelsonv1alpha1.HelmChart).Spec; r.RepoURL == "" || r.Version != "19.x" {
		t.Errorf("repository chart decoded as %+v", r)
	}
}

func TestHelmChartInvalid(t *testing.T) {
	const head = "apiVersion: keelson.dev/v1alpha1\nkind: HelmChart\nmetadata:\n  name: c\n  namespace: ns\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"no chart", head + "spec:\n  releaseName: r\n",
			[]string{"x.yaml:6:1: HelmChart ns/c: spec.chart: required field is missing"}},
		{"empty chart", head + "spec:\n  chart: \"\"\n",
			[]string{"x.yaml:7:10: HelmChart ns/c: spec.chart: must name a chart"}},
		{"no spec", head,
			[]string{"x.yaml:1:1: HelmChart ns/c: spec: required field is missing"}},
		{"release name", head + "spec:\n  chart: web\n  releaseName: Web_1\n",
			[]string{"x.yaml:8:16: HelmChart ns/c: spec.releaseName: must be a Helm release name"}},
		{"release name too long", head + "spec:\n  chart: web\n  releaseName: " + strings.Repeat("a", 54) + "\n",
			[]string{"x.yaml:8:16: HelmChart ns/c: spec.releaseName: must be a Helm release name"}},
		{"target namespace", head + "spec:\n  chart: web\n  targetNamespace: a.b\n",
			[]string{"x.yaml:8:20: HelmChart ns/c: spec.targetNamespace: must be a DNS label"}},
		{"values not an object", head + "spec:\n  chart: web\n  values: [a, b]\n",
			[]string{"x.yaml:8:11: HelmChart ns/c: spec.values: "}},
		{"repository URL", head + "spec:\n  chart: web\n  repoURL: ftp://example.com\n",
			[]string{"x.yaml:8:12: HelmChart ns/c: spec.repoURL: must be an http://, https:// or oci:// URL"}},
		{"version without repository", head + "spec:\n  chart: web\n  version: 1.0.0\n",
			[]string{"x.yaml:8:3: HelmChart ns/c: spec.version: only with repoURL"}},
		{"includeCRDs not a bool", head + "spec:\n  chart: web\n  includeCRDs: sure\n",
			[]string{"x.yaml:8:16: HelmChart ns/c: spec.includeCRDs: "}},
		{"unknown field", head + "spec:\n  chart: web\n  valueFiles: [a.yaml]\n",
			[]string{"x.yaml:8:3: HelmChart ns/c: spec.valueFiles: field not allowed (no such field in HelmChart)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := validate(t, "x.yaml", tt.src)
			if len(objs) != 0 {
				t.Errorf("invalid HelmChart accepted")
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant %d:\n%s", strings.Join(errs, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range errs {
				if !strings.HasPrefix(errs[i], tt.want[i]) {
					t.Errorf("error %d:\n  %s\nwant it to start\n  %s", i, errs[i], tt.want[i])
				}
			}
		})
	}
}
