package render

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	helmengine "helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	kschema "github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
)

// kubeVersion is .Capabilities.KubeVersion: the Kubernetes API keelson
// serves.
const kubeVersion = "v1.37.0"

// hookAnnotation marks a Helm hook; installHooks are the events keelson
// applies as ordinary objects.
const hookAnnotation = "helm.sh/hook"

var installHooks = map[string]bool{"pre-install": true, "post-install": true, "pre-upgrade": true, "post-upgrade": true}

// manifestSep splits a template's output into documents, as Helm splits
// it.
var manifestSep = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

// templateAt finds the template and line a Helm error names, in
// "template: web/templates/a.yaml:12:3: ..." or "parse error at
// (web/templates/a.yaml:12): ...".
var templateAt = regexp.MustCompile(`([^\s:()"]+/templates/[^\s:()"]+):(\d+)`)

// capabilities answers .Capabilities with keelson's API.
func capabilities() (*common.Capabilities, error) {
	caps := common.DefaultCapabilities.Copy()
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, err
	}
	caps.KubeVersion = *kv
	seen := map[string]bool{}
	var vs common.VersionSet
	for _, r := range store.Resources() {
		gv := r.GVK.GroupVersion().String()
		for _, v := range []string{gv, gv + "/" + r.GVK.Kind} {
			if !seen[v] {
				seen[v] = true
				vs = append(vs, v)
			}
		}
	}
	caps.APIVersions = vs
	return caps, nil
}

// renderChart renders the loaded chart with the render values top within
// the bounds.
func (r *helmRender) renderChart(ctx context.Context, lc *loadedChart, top common.Values) (map[string]string, error) {
	c := lc.chart
	g := newRenderGuard(ctx, r.maxOutput)
	instrument(c)
	e := helmengine.Engine{CustomTemplateFuncs: g.funcs()}
	type result struct {
		files map[string]string
		err   error
	}
	// Buffered: the goroutine must be able to finish after nobody waits.
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil { // a fault of Helm's on a chart must not end the process
				done <- result{err: fmt.Errorf("rendering failed: %v", p)}
			}
		}()
		files, err := e.RenderWithContext(ctx, c, top)
		done <- result{files, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, res.err
		}
		return res.files, r.measure(res.files)
	case <-ctx.Done():
		return nil, fmt.Errorf("the chart did not render in time (%w): a template that loops for ever? keelson stopped waiting for it", ctx.Err())
	}
}

// measure counts the output against the bound.
func (r *helmRender) measure(files map[string]string) error {
	for _, s := range files {
		r.outputBytes += int64(len(s))
	}
	if r.outputBytes > r.maxOutput {
		return fmt.Errorf("the chart renders %d bytes, more than keelson's bound of %d", r.outputBytes, r.maxOutput)
	}
	return nil
}

// templateError points an error of the render at the template it names.
func (r *helmRender) templateError(lc *loadedChart, err error) *kschema.Error {
	msg := strings.Join(strings.Fields(err.Error()), " ") // Helm's messages span lines
	m := templateAt.FindStringSubmatch(msg)
	if m == nil {
		return r.errorf("spec.chart", "%s: %s", r.hc.Spec.Chart, msg)
	}
	line, _ := strconv.Atoi(m[2])
	file := lc.sourceOf(lc.chart, m[1])
	if lc.archive {
		line = 0
	}
	return &kschema.Error{File: file, Line: line, Via: r.via(),
		Msg: fmt.Sprintf("HelmChart %s/%s in %s:%d: %s", r.namespace(), r.hc.Name, r.file, r.line, msg)}
}

// docs turns the rendered templates and the chart's CRDs into Docs.
func (r *helmRender) docs(lc *loadedChart, files map[string]string) ([]kschema.Doc, kschema.ErrorList) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var docs []kschema.Doc
	var errs kschema.ErrorList
	if r.includeCRDs() {
		for _, crd := range lc.chart.CRDObjects() {
			d, e := r.split(lc.sourceOf(lc.chart, crd.Filename), string(crd.File.Data), false)
			docs, errs = append(docs, d...), append(errs, e...)
		}
	}
	for _, n := range names {
		if strings.HasSuffix(n, "NOTES.txt") {
			continue // text for people, not an object
		}
		d, e := r.split(lc.sourceOf(lc.chart, n), files[n], true)
		docs, errs = append(docs, d...), append(errs, e...)
	}
	return docs, errs
}

// split makes a Doc of each object in a template's output. Objects of
// namespaced kinds without a namespace get the target namespace.
func (r *helmRender) split(file, out string, namespaced bool) ([]kschema.Doc, kschema.ErrorList) {
	var docs []kschema.Doc
	for i, part := range manifestSep.Split(out, -1) {
		js, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			return nil, kschema.ErrorList{{File: file, Via: r.via(), Msg: fmt.Sprintf("document %d of the rendered output is not YAML: %v", i+1, err)}}
		}
		var obj map[string]any
		if err := json.Unmarshal(js, &obj); err != nil || obj == nil {
			if strings.TrimSpace(string(js)) == "null" {
				continue // empty, or comments only
			}
			return nil, kschema.ErrorList{{File: file, Via: r.via(), Msg: fmt.Sprintf("document %d of the rendered output is not an object", i+1)}}
		}
		if !keepHook(obj) {
			continue
		}
		if namespaced {
			r.defaultNamespace(obj)
		}
		data, err := json.Marshal(obj)
		if err != nil {
			return nil, kschema.ErrorList{{File: file, Via: r.via(), Msg: err.Error()}}
		}
		docs = append(docs, kschema.Doc{File: file, Via: r.via(), Data: data})
	}
	return docs, nil
}

// keepHook reports whether obj is applied: an object that is no hook, or
// a hook of install or upgrade.
func keepHook(obj map[string]any) bool {
	meta, _ := obj["metadata"].(map[string]any)
	ann, _ := meta["annotations"].(map[string]any)
	events, ok := ann[hookAnnotation].(string)
	if !ok {
		return true
	}
	for _, e := range strings.Split(events, ",") {
		if installHooks[strings.TrimSpace(e)] {
			return true
		}
	}
	return false
}

// defaultNamespace gives obj the target namespace when it has none and
// its kind is namespaced. A kind the store does not know (a custom
// resource) is taken as namespaced, as most are.
func (r *helmRender) defaultNamespace(obj map[string]any) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if gv, err := schema.ParseGroupVersion(apiVersion); err == nil {
		if res, err := store.ResourceFor(gv.WithKind(kind)); err == nil && !res.Namespaced {
			return
		}
	}
	if kind == "CustomResourceDefinition" {
		return
	}
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	if ns, _ := meta["namespace"].(string); ns == "" {
		meta["namespace"] = r.targetNamespace()
	}
}
