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
	"k8s.io/apimachinery/pkg/types"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

type podPageData struct {
	Pod        *corev1.Pod
	Summary    string
	Health     string
	HealthMsg  string
	Source     string
	SourceLink string
	Owner      string
	Containers []containerView
	Events     events
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
	if !validName(ns, name) {
		v.notFound(w, r, "pod.html", p)
		return
	}
	obj, err := r.api.object(r.Context(), podsRes, ns, name)
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
	if d.Source != "" {
		d.SourceLink = "/ui/sources/" + url.PathEscape(d.Source)
	}
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
	watches := []watch{watchOf(apiPath(podsRes, ns), url.Values{"fieldSelector": {"metadata.name=" + name}}, pod.ResourceVersion)}
	evs, evWatch, err := readEvents(r, ns, url.Values{"fieldSelector": {"involvedObject.kind=Pod,involvedObject.name=" + name}}, pod.UID)
	if err != nil {
		v.failed(w, r, "pod.html", p, err)
		return
	}
	d.Events = evs
	if evWatch != nil {
		watches = append(watches, *evWatch)
	}
	p.Data, p.Live = d, liveURL(watches...)
	v.render(w, r, "pod.html", p)
}

// events are an object's events as a page shows them, or why they could
// not be read.
type events struct {
	Items []eventView
	Err   string
}

// readEvents reads the events query selects in ns, of the object with uid,
// and the watch that follows them. Only errSignedOut is returned; a read
// that fails otherwise is said in place of the events.
func readEvents(r *request, ns string, query url.Values, uid types.UID) (events, *watch, error) {
	l, err := r.api.list(r.Context(), eventsRes, ns, query)
	switch {
	case errors.Is(err, errSignedOut):
		return events{}, nil, err
	case err != nil:
		return events{Err: "The events cannot be read: " + err.Error()}, nil, nil
	}
	wt := watchOf(apiPath(eventsRes, ns), query, l.rv)
	return events{Items: eventViews(l.items, uid)}, &wt, nil
}

// eventView is one event of an object, at the last time it was seen.
type eventView struct {
	Type, Reason, Message string
	Count                 int32
	Last                  metav1.Time
}

// eventViews are the events of the object with uid, newest first: an
// event of an earlier object of the same name (a StatefulSet's pod) is not
// this one's.
func eventViews(items []store.Object, uid types.UID) []eventView {
	var out []eventView
	for _, o := range items {
		e, ok := o.(*corev1.Event)
		if !ok || (e.InvolvedObject.UID != "" && e.InvolvedObject.UID != uid) {
			continue
		}
		last := e.LastTimestamp
		switch {
		case !last.IsZero():
		case !e.EventTime.IsZero():
			last = metav1.NewTime(e.EventTime.Time)
		default:
			last = e.CreationTimestamp
		}
		count := e.Count
		if e.Series != nil {
			count = e.Series.Count
		}
		out = append(out, eventView{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: max(count, 1), Last: last})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Last.After(out[j].Last.Time) })
	return out
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
