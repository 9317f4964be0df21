package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/labels"
)

// ListOptions narrows a List.
type ListOptions struct {
	// Namespace limits the list to one namespace; empty lists all of them.
	Namespace string
	// Selector keeps only objects whose labels match; nil keeps everything.
	Selector labels.Selector
	// Limit caps the number of items returned; 0 returns them all. When more
	// remain, List.Continue is set.
	Limit int64
	// Continue is the token of a previous page; the next page is read at that
	// page's resourceVersion, so all pages form one consistent snapshot.
	Continue string
	// ResourceVersion reads the list as of that etcd revision; empty reads the
	// latest (a linearizable read).
	ResourceVersion string
	// Shared returns the store's cached objects themselves instead of copies,
	// for readers that never modify them (informer caches, serializers): a list
	// then costs about what etcd's range read costs. Modifying a shared item
	// corrupts every later read; DeepCopy it first.
	Shared bool
}

// List is one page of objects of one resource, all as of ResourceVersion.
type List struct {
	Items []Object
	// ResourceVersion is the etcd revision the page was read at; a watch from it
	// misses nothing.
	ResourceVersion string
	// Continue is set when more items remain; pass it back for the next page.
	Continue string
}

type continueToken struct {
	RV    int64  `json:"rv"`
	Start string `json:"start"`
}

// listPage is how many keys one etcd read of a List takes at most, so that
// a large kind (150,000 pods are some 200 MB) is read in pages at one
// revision rather than in one message over gRPC's limit; a page still over
// it is halved until it fits.
var listPage = 10000

// List reads the objects of r. Errors: ErrTooOld (the revision asked for, or of
// the continue token, was compacted), ErrCorrupt (with the key: nothing is
// skipped silently), ErrInvalid.
func (s *Store) List(ctx context.Context, r Resource, opts ListOptions) (_ *List, err error) {
	start := time.Now()
	defer func() { s.metrics.observe("list", start, err) }()
	if !r.Namespaced && opts.Namespace != "" {
		return nil, fmt.Errorf("%w: %s is cluster-scoped, got namespace %q", ErrInvalid, r, opts.Namespace)
	}
	prefix := s.rangePrefix(r, opts.Namespace)
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	rev, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		rev, from = tok.RV, prefix+tok.Start
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%w: limit %d is negative", ErrInvalid, opts.Limit)
	}
	out := &List{}
	page := int64(listPage)
	for {
		getOpts := []clientv3.OpOption{clientv3.WithRange(end)}
		if rev > 0 {
			getOpts = append(getOpts, clientv3.WithRev(rev))
		}
		want := page
		if opts.Limit > 0 {
			want = min(page, opts.Limit-int64(len(out.Items))+1)
		}
		getOpts = append(getOpts, clientv3.WithLimit(want))
		resp, err := s.client.Get(ctx, from, getOpts...)
		if status.Code(err) == codes.ResourceExhausted && page > 1 {
			// The page's objects are over the message limit together:
			// read fewer at a time, at the same revision.
			page /= 2
			continue
		}
		if err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return nil, fmt.Errorf("list %s at revision %d: %w", r, rev, ErrTooOld)
			}
			if errors.Is(err, rpctypes.ErrFutureRev) {
				return nil, fmt.Errorf("%w: list %s: resourceVersion %d is newer than the store", ErrInvalid, r, rev)
			}
			return nil, fmt.Errorf("list %s: %w", r, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs := resp.Kvs
		full := false
		if opts.Limit > 0 && int64(len(out.Items)+len(kvs)) > opts.Limit {
			// One more key than needed was read to learn whether more remain.
			kvs = kvs[:opts.Limit-int64(len(out.Items))]
		}
		items, err := s.decodeAll(r, kvs, opts.Selector, opts.Shared)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, items...)
		more := resp.More || len(kvs) < len(resp.Kvs)
		if opts.Limit > 0 && int64(len(out.Items)) >= opts.Limit {
			full = true
		}
		if !more {
			break
		}
		last := string(kvs[len(kvs)-1].Key)
		from = last + "\x00"
		if full {
			out.Continue = encodeContinue(rev, strings.TrimPrefix(from, prefix))
			break
		}
	}
	out.ResourceVersion = formatRV(rev)
	return out, nil
}

// decodeAll decodes every value and keeps those that match the selector.
func (s *Store) decodeAll(r Resource, kvs []*mvccpb.KeyValue, sel labels.Selector, shared bool) ([]Object, error) {
	objs, err := s.cache.decodeKVs(r, kvs, shared)
	if err != nil || sel == nil || sel.Empty() {
		return objs, err
	}
	items := objs[:0]
	for _, obj := range objs {
		if sel.Matches(labels.Set(obj.GetLabels())) {
			items = append(items, obj)
		}
	}
	return items, nil
}

func encodeContinue(rev int64, start string) string {
	b, _ := json.Marshal(continueToken{RV: rev, Start: start})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var tok continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &tok)
	}
	if err != nil || tok.RV <= 0 || strings.Contains(tok.Start, "..") {
		return tok, fmt.Errorf("%w: continue token %q is not one the store gave", ErrInvalid, s)
	}
	return tok, nil
}
