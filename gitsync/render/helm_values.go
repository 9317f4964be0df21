package render

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
)

// renderValues makes what the templates see: the chart's values under
// vals, .Release, .Capabilities and .Chart, as `helm template` makes them,
// and checks the values against the charts' values.schema.json.
func (r *helmRender) renderValues(lc *loadedChart, vals map[string]any) (common.Values, error) {
	c := lc.chart
	caps, err := capabilities()
	if err != nil {
		return nil, err
	}
	if kv := c.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion %s; keelson serves Kubernetes %s", kv, caps.KubeVersion.Version)
	}
	if err := chartutil.ProcessDependencies(c, vals); err != nil {
		return nil, fmt.Errorf("dependencies: %w", err)
	}
	opts := common.ReleaseOptions{Name: r.releaseName(), Namespace: r.targetNamespace(), Revision: 1, IsInstall: true}
	// Helm's own check of values.schema.json fetches the remote schemas a
	// schema refers to: keelson checks with nothing fetched instead.
	top, err := util.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, true)
	if err != nil {
		return nil, err
	}
	if v, ok := top["Values"].(common.Values); ok {
		if err := lc.checkValues(c, v.AsMap()); err != nil {
			return nil, err
		}
	}
	if rel, ok := top["Release"].(map[string]any); ok {
		rel["Service"] = "keelson"
	}
	return top, nil
}

// checkValues validates vals against the values.schema.json of c, and the
// values of each subchart against its own, as Helm does.
func (lc *loadedChart) checkValues(c *chart.Chart, vals map[string]any) error {
	var errs []error
	if len(c.Schema) > 0 {
		file := lc.sourceOf(lc.chart, c.ChartFullPath()+"/values.schema.json")
		if err := validateValues(file, c.Schema, vals); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range c.Dependencies() {
		if sub, ok := vals[d.Name()].(map[string]any); ok {
			if err := lc.checkValues(d, sub); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// schemaLocation is where a values schema is compiled from; it is never
// read, the schema being given to the compiler.
const schemaLocation = "file:///values.schema.json"

func validateValues(file string, schemaJSON []byte, vals map[string]any) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no scheme: a $ref to another file or URL is an error
	if err := c.AddResource(schemaLocation, doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	sch, err := c.Compile(schemaLocation)
	if err != nil {
		return fmt.Errorf("%s: %w (keelson reads no schema from elsewhere)", file, err)
	}
	if err := sch.Validate(vals); err != nil {
		return fmt.Errorf("the values do not match %s: %s", file, strings.Join(strings.Fields(err.Error()), " "))
	}
	return nil
}
