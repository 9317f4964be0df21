package ui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
)

type podPageData struct {
	Pod        *corev1.Pod
	Summary    string
	Health     string
	HealthMsg  string
	Source     string
	Owner      string
	Containers []containerView
	Events     []corev1.Event
	// Log is the URL of the first container's log stream.
	Log string
}

type containerView struct {
	Name, Image, State string
	Ready              bool
	Restarts           int32
	Init               bool
	Log                string
}

func (v *View) podPage(w http.ResponseWriter, r *request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	p := &page{Title: "Pod " + ns + "/" + name, Nav: "sources"}
	obj, err := get(r.Context(), r.api, podsRes, ns, name)
	if err != nil {
		v.failed(w, r, "pod.html", p, err)
		return
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		v.failed(w, r, "pod.html", p, fmt.Errorf("the API answered a %T for a pod", obj))
		return
	}
	d := podPageData{Pod: pod, Summary: podSummary(pod), Source: pod.Labels[keelsonv1alpha1.LabelSource]}
	n := nodeOf(pod)
	d.Health, d.HealthMsg = n.Health, n.Message
	if o := metav1.GetControllerOf(pod); o != nil {
		d.Owner = o.Kind + " " + o.Name
	}
	d.Containers = containerViews(pod)
	for _, c := range d.Containers {
		if !c.Init {
			d.Log = c.Log
			break
		}
	}
	byPod := url.Values{"fieldSelector": {"involvedObject.kind=Pod,involvedObject.name=" + name}}
	events, err := list(r.Context(), r.api, eventsRes, ns, byPod)
	var watches []watch
	watches = append(watches, watchOf(apiPath(podsRes, ns), url.Values{"fieldSelector": {"metadata.name=" + name}}, pod.ResourceVersion))
	if err == nil {
		for _, o := range events.items {
			if e, ok := o.(*corev1.Event); ok {
				d.Events = append(d.Events, *e)
			}
		}
		sort.SliceStable(d.Events, func(i, j int) bool { return eventTime(&d.Events[i]).After(eventTime(&d.Events[j]).Time) })
		watches = append(watches, watchOf(apiPath(eventsRes, ns), byPod, events.rv))
	} else if errors.Is(err, errSignedOut) {
		v.failed(w, r, "pod.html", p, err)
		return
	}
	p.Data, p.Live = d, liveURL(watches...)
	v.render(w, r, "pod.html", p)
}

func eventTime(e *corev1.Event) metav1.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp
	}
	if !e.EventTime.IsZero() {
		return metav1.NewTime(e.EventTime.Time)
	}
	return e.CreationTimestamp
}

func containerViews(pod *corev1.Pod) []containerView {
	statuses := map[string]corev1.ContainerStatus{}
	for _, s := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		statuses[s.Name] = s
	}
	var out []containerView
	add := func(c corev1.Container, init bool) {
		s := statuses[c.Name]
		out = append(out, containerView{Name: c.Name, Image: c.Image, Ready: s.Ready, Restarts: s.RestartCount,
			Init: init, State: stateOf(s.State), Log: podLink(pod.Namespace, pod.Name) + "/log?container=" + url.QueryEscape(c.Name)})
	}
	for _, c := range pod.Spec.InitContainers {
		add(c, true)
	}
	for _, c := range pod.Spec.Containers {
		add(c, false)
	}
	return out
}

func stateOf(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running since " + s.Running.StartedAt.UTC().Format("2006-01-02 15:04:05")
	case s.Terminated != nil:
		t := s.Terminated
		return fmt.Sprintf("Terminated: %s (exit code %d)", t.Reason, t.ExitCode)
	case s.Waiting != nil:
		return strings.TrimSpace("Waiting: " + s.Waiting.Reason + " " + s.Waiting.Message)
	}
	return "Not started"
}
