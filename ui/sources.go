package ui

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

var (
	syncsRes  = store.MustResource("syncs.keelson.dev")
	syncsPath = apiPath(syncsRes, "")
)

// source is one Sync as the pages show it.
type source struct {
	Name, URL, Ref, Path string
	Suspended            bool
	Ready                condition
	Health               string
	HealthMessage        string
	Applied, Attempted   *commit
	AppliedAt            *metav1.Time
	Errors               []fileError
	History              []attempt
	Objects              int
}

type condition struct {
	Status, Reason string
	// Message, split where it names a file.
	Message fileError
}

type commit struct {
	Revision, Short, Message, Author string
	Time                             *metav1.Time
	URL                              string
}

type attempt struct {
	keelsonv1alpha1.SyncAttempt
	Short  string
	URL    string
	Errors []fileError
}

func toSource(s *keelsonv1alpha1.Sync) source {
	f, hasForge := forgeOf(s.Spec.URL)
	out := source{Name: s.Name, URL: s.Spec.URL, Ref: s.Spec.Ref, Path: s.Spec.Path, Suspended: s.Spec.Suspend,
		Health: "Unknown", AppliedAt: s.Status.LastAppliedTime, Objects: len(s.Status.Inventory)}
	if c := meta.FindStatusCondition(s.Status.Conditions, keelsonv1alpha1.ConditionReady); c != nil {
		out.Ready = condition{string(c.Status), c.Reason, splitError(c.Message, f, hasForge, s.Status.LastAttemptedRevision)}
	} else {
		out.Ready = condition{"Unknown", "NotSyncedYet", fileError{Rest: "no sync has finished yet"}}
	}
	if h := s.Status.Health; h != nil {
		out.Health, out.HealthMessage = h.Status, h.Message
	}
	out.Applied = toCommit(s.Status.LastApplied, s.Status.LastAppliedRevision, f, hasForge)
	if s.Status.LastAttemptedRevision != s.Status.LastAppliedRevision {
		out.Attempted = toCommit(s.Status.LastAttempted, s.Status.LastAttemptedRevision, f, hasForge)
	}
	for _, e := range s.Status.Errors {
		out.Errors = append(out.Errors, splitError(e, f, hasForge, s.Status.LastAttemptedRevision))
	}
	for _, a := range s.Status.History {
		at := attempt{SyncAttempt: a, Short: short(a.Revision)}
		if hasForge && a.Revision != "" {
			at.URL = f.commitURL(a.Revision)
		}
		if a.Result != "Succeeded" && a.Message != "" {
			at.Errors = []fileError{splitError(a.Message, f, hasForge, a.Revision)}
		}
		out.History = append(out.History, at)
	}
	return out
}

func toCommit(c *keelsonv1alpha1.Commit, rev string, f forge, hasForge bool) *commit {
	if rev == "" {
		return nil
	}
	out := &commit{Revision: rev, Short: short(rev)}
	if c != nil && c.Revision == rev {
		out.Message, out.Author, out.Time = c.Message, c.Author, c.Time
		if hasForge && c.FromGit {
			out.URL = f.commitURL(rev)
		}
	}
	return out
}

// short is a revision as Git abbreviates it.
func short(rev string) string {
	if len(rev) > 19 && rev[:7] == "sha256:" {
		return rev[:19]
	}
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func (v *View) sourcesPage(w http.ResponseWriter, r *request) {
	p := &page{Title: "Sources", Nav: "sources"}
	var l keelsonv1alpha1.SyncList
	if err := r.api.getInto(r.Context(), syncsPath, nil, &l); err != nil {
		v.failed(w, r, "sources.html", p, err)
		return
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	srcs := make([]source, 0, len(l.Items))
	for i := range l.Items {
		srcs = append(srcs, toSource(&l.Items[i]))
	}
	p.Data = srcs
	p.Live = liveURL(watchOf(syncsPath, nil, l.ResourceVersion))
	v.render(w, r, "sources.html", p)
}

type sourcePageData struct {
	Source source
	Tree   []*treeNode
	// TreeErr says why (part of) the tree could not be read.
	TreeErr string
	Counts  map[string]int
}

func (v *View) sourcePage(w http.ResponseWriter, r *request) {
	name := r.PathValue("name")
	p := &page{Title: name, Nav: "sources"}
	if !validName("", name) {
		v.notFound(w, r, "source.html", p)
		return
	}
	var s keelsonv1alpha1.Sync
	if err := r.api.getInto(r.Context(), objectPath(syncsRes, "", name), nil, &s); err != nil {
		v.failed(w, r, "source.html", p, err)
		return
	}
	t, err := buildTree(r.Context(), r.api, &s)
	if errors.Is(err, errSignedOut) {
		v.failed(w, r, "source.html", p, err)
		return
	}
	d := sourcePageData{Source: toSource(&s), Tree: t.roots, Counts: t.counts}
	if err != nil {
		d.TreeErr = err.Error()
	}
	watches := append([]watch{watchOf(syncsPath, url.Values{"fieldSelector": {"metadata.name=" + s.Name}}, s.ResourceVersion)}, t.watches...)
	p.Data, p.Live = d, liveURL(watches...)
	v.render(w, r, "source.html", p)
}

// ago says how long ago t was, as kubectl's AGE column does.
func ago(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return humanDuration(time.Since(t.Time))
}
