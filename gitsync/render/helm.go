package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"go.yaml.in/yaml/v3"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/schema"
)

// Helm charts are rendered as `helm template` renders them, offline:
//
//   - lookup answers nothing (an empty object), as with no cluster;
//   - .Capabilities are keelson's: Kubernetes 1.37 and the API versions of
//     the kinds the store keeps;
//   - .Release is an install (IsInstall true, Revision 1, Service
//     "keelson");
//   - hooks: keelson has no release phases to run them in. A hook of
//     install or upgrade (pre- or post-) is applied as an ordinary object,
//     in keelson's own order; hooks of deletion, rollback and tests only
//     are left out, since applying them would run them now;
//   - NOTES.txt is not an object and is left out;
//   - the CRDs of crds/ folders are included unless includeCRDs is false;
//   - the values are checked against values.schema.json with nothing
//     fetched: a schema referring to a URL or another file is an error.

func init() { engines[kindHelm] = renderHelmFile }

// helmChartAPIVersion and helmChartKind mark the documents this engine
// renders.
const (
	helmChartAPIVersion = "keelson.dev/v1alpha1"
	helmChartKind       = "HelmChart"
)

// errRepositories is the answer to a chart from a chart repository when
// the Renderer has no ChartFetcher.
var errRepositories = errors.New("chart repositories are not enabled on this server (keelson server --chart-repository URL); vendor the chart into the repository")

// helmDoc is one HelmChart of a file with the line it starts on.
type helmDoc struct {
	hc   keelsonv1alpha1.HelmChart
	line int
}

// renderHelmFile renders every HelmChart of a file. Documents that are not
// HelmCharts, and HelmCharts that do not decode, are Load's to read and to
// report: the file stays a plain manifest.
func renderHelmFile(ctx context.Context, t *Tree, u unit, lim Limits) ([]schema.Doc, schema.ErrorList) {
	data, err := t.ReadFile(u.entry)
	if err != nil {
		return nil, schema.ErrorList{{File: u.entry, Msg: fmt.Sprintf("cannot read: %v", err)}}
	}
	budget := lim.maxOutput()
	var docs []schema.Doc
	var errs schema.ErrorList
	for _, d := range helmDocs(data) {
		r := &helmRender{t: t, file: u.entry, line: d.line, hc: &d.hc, maxOutput: budget}
		if budget <= 0 { // the bound is the file's, as the file is the unit
			errs = append(errs, r.errorf("", "the HelmCharts before it in %s render %d bytes, keelson's bound for one file", u.entry, lim.maxOutput()))
			break
		}
		out, e := r.render(ctx)
		errs = append(errs, e...)
		docs = append(docs, out...)
		budget -= r.outputBytes
	}
	return docs, errs
}

// helmDocs returns the HelmCharts of a YAML stream that decode, with their
// lines. A stream that does not parse yields what parsed before the fault.
func helmDocs(data []byte) []helmDoc {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []helmDoc
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return out // at the end, or a fault Load reports
		}
		if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
			continue
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
		}
		if n.Decode(&head) != nil || head.APIVersion != helmChartAPIVersion || head.Kind != helmChartKind {
			continue
		}
		var m map[string]any
		if n.Decode(&m) != nil {
			continue
		}
		js, err := json.Marshal(m)
		if err != nil {
			continue
		}
		var hc keelsonv1alpha1.HelmChart
		if json.Unmarshal(js, &hc) != nil || hc.Spec.Chart == "" || hc.Name == "" {
			continue // the schema says what is wrong with it
		}
		out = append(out, helmDoc{hc: hc, line: n.Content[0].Line})
	}
}

// helmRender renders one HelmChart.
type helmRender struct {
	t         *Tree
	file      string // the HelmChart's file
	line      int    // where its document starts
	hc        *keelsonv1alpha1.HelmChart
	maxOutput int64

	chartPath   string // the chart folder or archive in the tree
	outputBytes int64
}

// namespace is the HelmChart's own, as the store will keep it.
func (r *helmRender) namespace() string {
	if r.hc.Namespace != "" {
		return r.hc.Namespace
	}
	return "default"
}

func (r *helmRender) releaseName() string {
	if r.hc.Spec.ReleaseName != "" {
		return r.hc.Spec.ReleaseName
	}
	return r.hc.Name
}

func (r *helmRender) targetNamespace() string {
	if r.hc.Spec.TargetNamespace != "" {
		return r.hc.Spec.TargetNamespace
	}
	return r.namespace()
}

func (r *helmRender) includeCRDs() bool {
	return r.hc.Spec.IncludeCRDs == nil || *r.hc.Spec.IncludeCRDs
}

// via names the HelmChart for the objects it renders and their errors.
func (r *helmRender) via() string {
	return fmt.Sprintf("HelmChart %s/%s in %s (chart %s)", r.namespace(), r.hc.Name, r.file, r.hc.Spec.Chart)
}

// errorf makes a problem of the HelmChart at its line, at field p.
func (r *helmRender) errorf(p, format string, args ...any) *schema.Error {
	return &schema.Error{
		File: r.file, Line: r.line, Kind: helmChartKind, Namespace: r.namespace(), Name: r.hc.Name,
		Path: p, Msg: fmt.Sprintf(format, args...),
	}
}

// render loads the chart and its values, renders them within the bounds
// and turns the output into docs. A panic in Helm's code on a chart is the
// chart's error, not the end of the process.
func (r *helmRender) render(ctx context.Context) (docs []schema.Doc, errs schema.ErrorList) {
	defer func() {
		if p := recover(); p != nil {
			docs, errs = nil, schema.ErrorList{r.errorf("spec.chart", "%s: rendering failed: %v", r.hc.Spec.Chart, p)}
		}
	}()
	return r.renderChartDocs(ctx)
}

func (r *helmRender) renderChartDocs(ctx context.Context) ([]schema.Doc, schema.ErrorList) {
	spec := &r.hc.Spec
	dir := path.Dir(r.file)
	lc, perr := r.loadChart(ctx, dir)
	if perr != nil {
		return nil, schema.ErrorList{perr}
	}
	vals, errs := r.values(dir)
	if len(errs) > 0 {
		return nil, errs
	}
	top, err := r.renderValues(lc, vals)
	if err != nil {
		return nil, schema.ErrorList{r.errorf("", "%s: %v", spec.Chart, err)}
	}
	files, err := r.renderChart(ctx, lc, top)
	if err != nil {
		return nil, schema.ErrorList{r.templateError(lc, err)}
	}
	return r.docs(lc, files)
}

// loadChart loads the chart of the HelmChart: from its repository with
// spec.repoURL, else from the tree.
func (r *helmRender) loadChart(ctx context.Context, dir string) (*loadedChart, *schema.Error) {
	spec := &r.hc.Spec
	if spec.RepoURL != "" {
		return r.loadRepoChart(ctx)
	}
	chartPath, err := Join(dir, spec.Chart)
	if err != nil {
		return nil, r.errorf("spec.chart", "%v", err)
	}
	r.chartPath = chartPath
	lc, err := loadChart(r.t, chartPath)
	if err != nil {
		return nil, r.errorf("spec.chart", "%s: %v", spec.Chart, err)
	}
	return lc, nil
}

// values merges the values files in order, then the inline values.
func (r *helmRender) values(dir string) (map[string]any, schema.ErrorList) {
	vals := map[string]any{}
	var errs schema.ErrorList
	for i, f := range r.hc.Spec.ValuesFiles {
		field := fmt.Sprintf("spec.valuesFiles[%d]", i)
		p, err := Join(dir, f)
		if err != nil {
			errs = append(errs, r.errorf(field, "%v", err))
			continue
		}
		data, err := r.t.ReadFile(p)
		if err != nil {
			errs = append(errs, r.errorf(field, "%s: cannot read the values file %s: %v", f, p, notExistText(err)))
			continue
		}
		v, err := readValues(data)
		if err != nil {
			errs = append(errs, &schema.Error{File: p, Via: r.via(), Msg: fmt.Sprintf("values file (%s of HelmChart %s/%s in %s): %v", field, r.namespace(), r.hc.Name, r.file, err)})
			continue
		}
		vals = mergeValues(vals, v)
	}
	if v := r.hc.Spec.Values; v != nil && len(v.Raw) > 0 {
		var inline map[string]any
		if err := json.Unmarshal(v.Raw, &inline); err != nil {
			errs = append(errs, r.errorf("spec.values", "must be an object: %v", err))
		} else {
			vals = mergeValues(vals, inline)
		}
	}
	return vals, errs
}
