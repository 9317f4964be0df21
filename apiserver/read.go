package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keelson/keelson/store"
)

// maxLimit bounds one page, so that a client cannot make the server build an
// unbounded response in one go by asking for it.
const maxLimit = 100000

// readOptions are the query parameters of get, list and watch.
type readOptions struct {
	labels   labels.Selector
	fields   fields.Selector
	limit    int64
	cont     string
	rv       string
	rvMatch  metav1.ResourceVersionMatch
	rvNum    int64
	timeout  time.Duration
	bookmark bool
	initial  bool
}

func parseReadOptions(q *request, v url.Values) (*readOptions, error) {
	o := &readOptions{cont: v.Get("continue"), rv: v.Get("resourceVersion"),
		rvMatch: metav1.ResourceVersionMatch(v.Get("resourceVersionMatch")), bookmark: isTrue(v.Get("allowWatchBookmarks"))}
	var err error
	if o.labels, err = labels.Parse(v.Get("labelSelector")); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("labelSelector %q: %v", v.Get("labelSelector"), err))
	}
	if o.fields, err = parseFieldSelector(q.res, v.Get("fieldSelector")); err != nil {
		return nil, err
	}
	if l := v.Get("limit"); l != "" {
		if o.limit, err = strconv.ParseInt(l, 10, 64); err != nil || o.limit < 0 || o.limit > maxLimit {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("limit %q: want an integer from 0 to %d", l, maxLimit))
		}
	}
	if o.rv != "" {
		if o.rvNum, err = strconv.ParseInt(o.rv, 10, 64); err != nil || o.rvNum < 0 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion %q: want a non-negative integer", o.rv))
		}
	}
	switch o.rvMatch {
	case "":
	case metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
		if o.rv == "" && !(o.rvMatch == metav1.ResourceVersionMatchNotOlderThan && isTrue(v.Get("sendInitialEvents"))) {
			return nil, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
		}
		if o.rvMatch == metav1.ResourceVersionMatchExact && o.rvNum == 0 {
			return nil, apierrors.NewBadRequest(`resourceVersionMatch "Exact" is forbidden for resourceVersion "0"`)
		}
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersionMatch %q: want NotOlderThan or Exact", o.rvMatch))
	}
	if o.cont != "" && o.rv != "" {
		return nil, apierrors.NewBadRequest("specifying resourceVersion is not allowed when using continue")
	}
	if t := v.Get("timeoutSeconds"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("timeoutSeconds %q: want a non-negative integer", t))
		}
		o.timeout = time.Duration(n) * time.Second
	}
	if s := v.Get("sendInitialEvents"); s != "" {
		o.initial = isTrue(s)
		if o.initial && (o.rvMatch != metav1.ResourceVersionMatchNotOlderThan || !o.bookmark) {
			return nil, apierrors.NewBadRequest("sendInitialEvents needs resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true")
		}
	}
	return o, nil
}

// matcher returns whether an entry is one the request selects.
func (o *readOptions) matcher(q *request) func(*entry) bool {
	return func(e *entry) bool {
		if q.namespace != "" && e.obj.GetNamespace() != q.namespace {
			return false
		}
		if q.name != "" && e.obj.GetName() != q.name {
			return false
		}
		return o.labels.Matches(e.labels) && o.fields.Matches(e.fields)
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, q *request, v *view) {
	o, err := parseReadOptions(q, r.URL.Query())
	if err != nil {
		writeStatus(w, err)
		return
	}
	if o.rv == "" {
		// A plain get is a quorum read, straight from etcd.
		obj, err := q.res.New()
		if err == nil {
			err = s.cfg.Store.Get(r.Context(), q.namespace, q.name, obj)
		}
		if err != nil {
			writeStatus(w, statusError(err, q.groupResource(), q.name))
			return
		}
		e, err := newEntry(q.res, obj)
		if err != nil {
			writeStatus(w, err)
			return
		}
		v.writeEntry(w, e)
		return
	}
	c := s.cacheFor(q.res)
	if err := s.waitNotOlder(r.Context(), c, o.rvNum); err != nil {
		writeStatus(w, err)
		return
	}
	key := q.name
	if q.namespace != "" {
		key = q.namespace + "/" + q.name
	}
	e, _ := c.get(key)
	if e == nil {
		writeStatus(w, apierrors.NewNotFound(q.groupResource(), q.name))
		return
	}
	v.writeEntry(w, e)
}

// waitNotOlder waits until the cache has seen rv (0: has listed at all).
func (s *Server) waitNotOlder(ctx context.Context, c *cache, rv int64) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FreshWait)
	defer cancel()
	err := c.waitReady(ctx)
	if err == nil {
		err = c.catchUp(ctx, rv)
	}
	if err != nil {
		if rv > 0 && errors.Is(err, context.DeadlineExceeded) {
			return tooLarge(rv)
		}
		return apierrors.NewTimeoutError(fmt.Sprintf("the watch cache of %s is not ready: %v", c.res, err), 1)
	}
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, q *request, v *view) {
	o, err := parseReadOptions(q, r.URL.Query())
	if err != nil {
		writeStatus(w, err)
		return
	}
	// Pages, exact revisions and limited consistent lists come from etcd,
	// which keeps the snapshot a continue token refers to; everything else
	// from the watch cache.
	fromEtcd := o.cont != "" || o.rvMatch == metav1.ResourceVersionMatchExact || (o.limit > 0 && o.rv != "0")
	if !fromEtcd {
		c := s.cacheFor(q.res)
		if o.rv == "" {
			err = c.waitFresh(r.Context())
			fromEtcd = err != nil
		} else {
			err = s.waitNotOlder(r.Context(), c, o.rvNum)
		}
		if err != nil && !fromEtcd {
			writeStatus(w, err)
			return
		}
		if !fromEtcd {
			entries, rv := c.snapshot(o.matcher(q))
			v.writeList(w, entries, strconv.FormatInt(rv, 10), "")
			return
		}
		s.log.Debug("watch cache not fresh, listing from etcd", "resource", q.res.String(), "err", err)
	}
	s.listEtcd(w, r, q, v, o)
}

func (s *Server) listEtcd(w http.ResponseWriter, r *http.Request, q *request, v *view, o *readOptions) {
	s.cacheFor(q.res) // a watch is likely to follow
	rv := o.rv
	if rv == "0" {
		rv = ""
	}
	list, err := s.cfg.Store.List(r.Context(), q.res, store.ListOptions{
		Namespace: q.namespace, Selector: o.labels, Limit: o.limit, Continue: o.cont, ResourceVersion: rv,
	})
	if err != nil {
		if errors.Is(err, store.ErrTooOld) && o.cont != "" {
			writeStatus(w, apierrors.NewResourceExpired("the continue token has expired: list again from the start"))
			return
		}
		writeStatus(w, statusError(err, q.groupResource(), ""))
		return
	}
	match := o.matcher(q)
	entries := make([]*entry, 0, len(list.Items))
	for _, obj := range list.Items {
		e, err := newEntry(q.res, obj)
		if err != nil {
			writeStatus(w, err)
			return
		}
		if match(e) {
			entries = append(entries, e)
		}
	}
	v.writeList(w, entries, list.ResourceVersion, list.Continue)
}
