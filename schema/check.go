package schema

import (
	"fmt"

	"cuelang.org/go/cue"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

// maxAnnotationsSize is Kubernetes' limit on the total size of an object's
// annotation keys and values.
const maxAnnotationsSize = 256 << 10

// fieldProblem is a rule broken at a path inside an object.
type fieldProblem struct {
	path []cue.Selector
	msg  string
}

func sels(parts ...any) []cue.Selector {
	out := make([]cue.Selector, len(parts))
	for i, p := range parts {
		switch p := p.(type) {
		case int:
			out[i] = cue.Index(p)
		case string:
			out[i] = cue.Str(p)
		}
	}
	return out
}

func join(a []cue.Selector, b ...any) []cue.Selector {
	return append(a[:len(a):len(a)], sels(b...)...)
}

// check applies the rules that need more than one field at a time, or
// apimachinery's parsers (selectors, quantities): the ones CUE cannot express
// clearly. Field-by-field rules live in the CUE definitions.
func check(obj runtime.Object) []fieldProblem {
	var ps []fieldProblem
	if m, ok := obj.(metav1.Object); ok {
		if m.GetName() == "" && m.GetGenerateName() == "" {
			ps = append(ps, fieldProblem{sels("metadata", "name"), "required field is missing"})
		}
		ps = append(ps, checkAnnotations(m.GetAnnotations(), sels("metadata", "annotations"))...)
	}
	tmpl := sels("spec", "template")
	switch o := obj.(type) {
	case *corev1.Pod:
		ps = append(ps, checkPodSpec(&o.Spec, sels("spec"))...)
	case *corev1.ReplicationController:
		if o.Spec.Template != nil {
			ps = append(ps, checkTemplate(o.Spec.Template, tmpl)...)
			if len(o.Spec.Selector) > 0 {
				ps = append(ps, checkSelector(&metav1.LabelSelector{MatchLabels: o.Spec.Selector}, o.Spec.Template.Labels)...)
			}
		}
	case *appsv1.Deployment:
		ps = append(ps, checkWorkload(o.Spec.Selector, &o.Spec.Template, tmpl)...)
	case *appsv1.ReplicaSet:
		ps = append(ps, checkWorkload(o.Spec.Selector, &o.Spec.Template, tmpl)...)
	case *appsv1.StatefulSet:
		ps = append(ps, checkWorkload(o.Spec.Selector, &o.Spec.Template, tmpl)...)
	case *appsv1.DaemonSet:
		ps = append(ps, checkWorkload(o.Spec.Selector, &o.Spec.Template, tmpl)...)
	case *batchv1.Job:
		ps = append(ps, checkJob(&o.Spec, sels("spec"))...)
	case *batchv1.CronJob:
		ps = append(ps, checkJob(&o.Spec.JobTemplate.Spec, sels("spec", "jobTemplate", "spec"))...)
	case *keelsonv1alpha1.NodePolicy:
		ps = append(ps, checkNodePolicy(&o.Spec)...)
	case *keelsonv1alpha1.HelmChart:
		ps = append(ps, checkHelmChart(&o.Spec)...)
	}
	ps = append(ps, checkStored(obj)...)
	return ps
}

func checkAnnotations(a map[string]string, path []cue.Selector) []fieldProblem {
	total := 0
	for k, v := range a {
		total += len(k) + len(v)
	}
	if total > maxAnnotationsSize {
		return []fieldProblem{{path, fmt.Sprintf("annotations total %d bytes, over the limit of %d (256 KiB)", total, maxAnnotationsSize)}}
	}
	return nil
}

func checkWorkload(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, path []cue.Selector) []fieldProblem {
	ps := checkTemplate(t, path)
	if sel != nil {
		ps = append(ps, checkSelector(sel, t.Labels)...)
	}
	return ps
}

func checkJob(spec *batchv1.JobSpec, path []cue.Selector) []fieldProblem {
	ps := checkTemplate(&spec.Template, join(path, "template"))
	if spec.ManualSelector != nil && *spec.ManualSelector && spec.Selector != nil {
		for _, p := range checkSelector(spec.Selector, spec.Template.Labels) {
			p.path = join(path, "selector")
			ps = append(ps, p)
		}
	}
	return ps
}

func checkTemplate(t *corev1.PodTemplateSpec, path []cue.Selector) []fieldProblem {
	ps := checkAnnotations(t.Annotations, join(path, "metadata", "annotations"))
	return append(ps, checkPodSpec(&t.Spec, join(path, "spec"))...)
}

// checkSelector requires the selector to select the template's own labels, as
// Kubernetes does: otherwise the controller would create pods it never sees.
func checkSelector(sel *metav1.LabelSelector, tmplLabels map[string]string) []fieldProblem {
	path := sels("spec", "selector")
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return []fieldProblem{{path, "invalid selector: " + err.Error()}}
	}
	if s.Empty() {
		return []fieldProblem{{path, "must not be empty: it selects the pods this object owns"}}
	}
	if !s.Matches(labels.Set(tmplLabels)) {
		return []fieldProblem{{path, fmt.Sprintf("selector %q does not match the template's labels %q: set spec.template.metadata.labels to match",
			s.String(), labels.Set(tmplLabels).String())}}
	}
	return nil
}

func checkPodSpec(spec *corev1.PodSpec, path []cue.Selector) []fieldProblem {
	var ps []fieldProblem
	seen := map[string]bool{}
	lists := []struct {
		field string
		cs    []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}}
	for _, l := range lists {
		for i, c := range l.cs {
			if seen[c.Name] {
				ps = append(ps, fieldProblem{join(path, l.field, i, "name"), fmt.Sprintf("duplicate container name %q: names must be unique within a pod", c.Name)})
			}
			seen[c.Name] = true
			ps = append(ps, checkResources(c.Resources, join(path, l.field, i, "resources"))...)
		}
	}
	return ps
}

// checkResources requires each request to be at most its limit.
func checkResources(r corev1.ResourceRequirements, path []cue.Selector) []fieldProblem {
	var ps []fieldProblem
	for name, req := range r.Requests {
		lim, ok := r.Limits[name]
		if ok && req.Cmp(lim) > 0 {
			ps = append(ps, fieldProblem{join(path, "requests", string(name)),
				fmt.Sprintf("request %s is more than the limit %s", req.String(), lim.String())})
		}
	}
	return ps
}
