package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keelson/keelson/store"
)

// searched are the kinds the search box looks through: what people look
// for by name or label. Secrets are not among them.
var searched = []store.Resource{
	store.MustResource("syncs.keelson.dev"),
	store.MustResource("namespaces"),
	nodesRes,
	store.MustResource("deployments.apps"),
	store.MustResource("statefulsets.apps"),
	store.MustResource("daemonsets.apps"),
	store.MustResource("cronjobs.batch"),
	jobsRes,
	store.MustResource("services"),
	store.MustResource("ingresses.networking.k8s.io"),
	store.MustResource("configmaps"),
	claimsRes,
	podsRes,
}

// maxResults bounds a search's answer.
const maxResults = 100

type hit struct {
	*treeNode
	Labels []string
}

type searchData struct {
	Selector bool
	Hits     []hit
	More     bool
	// Refused are the kinds the API would not list for this person;
	// Failed, those it could not list, and why.
	Refused []string
	Failed  []string
}

// isSelector says whether q is a label selector rather than words:
// "app=web", "tier in (front,back)", "!canary".
func isSelector(q string) bool {
	return strings.ContainsAny(q, "=!") || strings.Contains(q, " in ") || strings.Contains(q, " notin ")
}

func (v *View) searchPage(w http.ResponseWriter, r *request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	p := &page{Title: "Search", Nav: "search", Query: q}
	d := &searchData{Selector: isSelector(q)}
	p.Data = d
	if q == "" {
		v.render(w, r, "search.html", p)
		return
	}
	if d.Selector {
		if _, err := labels.Parse(q); err != nil {
			v.failed(w, r, "search.html", p, badRequest{fmt.Errorf("%q is not a label selector: %w", q, err)})
			return
		}
	}
	if err := search(r.Context(), r.api, q, d); err != nil {
		v.failed(w, r, "search.html", p, err)
		return
	}
	v.render(w, r, "search.html", p)
}

func search(ctx context.Context, api *client, q string, d *searchData) error {
	var query url.Values
	if d.Selector {
		query = url.Values{"labelSelector": {q}}
	}
	words := strings.ToLower(q)
	for _, res := range searched {
		l, err := api.list(ctx, res, "", query)
		switch {
		case errors.Is(err, errSignedOut):
			return err
		case apierrors.IsForbidden(err):
			d.Refused = append(d.Refused, res.String())
			continue
		case err != nil:
			d.Failed = append(d.Failed, fmt.Sprintf("%s: %v", res, err))
			continue
		}
		for _, o := range l.items {
			if !d.Selector && !matches(o, words) {
				continue
			}
			if len(d.Hits) == maxResults {
				d.More = true
				return nil
			}
			n := nodeOf(o)
			if n.Kind == "" {
				n.Kind = res.GVK.Kind
			}
			if res.GVK.Kind == "Sync" {
				n.Link = "/ui/sources/" + url.PathEscape(o.GetName())
			}
			d.Hits = append(d.Hits, hit{treeNode: n, Labels: labelList(o.GetLabels())})
		}
	}
	return nil
}

// matches says whether words occur in o's name or one of its labels.
func matches(o store.Object, words string) bool {
	if strings.Contains(strings.ToLower(o.GetName()), words) {
		return true
	}
	for k, v := range o.GetLabels() {
		if strings.Contains(strings.ToLower(k+"="+v), words) {
			return true
		}
	}
	return false
}

func labelList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
