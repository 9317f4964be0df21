package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// suite is every store behaviour, run against each kind of etcd.
var suite = []struct {
	name string
	run  func(t *testing.T, s *store.Store)
}{
	{"CreateGet", testCreateGet},
	{"CreateExists", testCreateExists},
	{"GetNotFound", testGetNotFound},
	{"Keys", testKeys},
	{"InvalidKeys", testInvalidKeys},
	{"UpdateCAS", testUpdateCAS},
	{"UpdateGeneration", testUpdateGeneration},
	{"Delete", testDelete},
	{"ListFilters", testListFilters},
	{"ListPages", testListPages},
	{"ListCorrupt", testListCorrupt},
	{"Watch", testWatch},
	{"WatchSelector", testWatchSelector},
	{"WatchTooOld", testWatchTooOld},
	{"TxnAtomic", testTxnAtomic},
	{"TxnLarge", testTxnLarge},
}

func TestStoreEmbedded(t *testing.T) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, etcdtest.NewStore(t)) })
	}
}

func TestStoreExternal(t *testing.T) {
	eps := etcdtest.External(t)
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, etcdtest.NewStoreAt(t, eps)) })
	}
}

func pod(ns, name string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "localhost/busybox:latest"}}},
	}
}

func mustCreate(t *testing.T, s *store.Store, objs ...store.Object) {
	t.Helper()
	for _, o := range objs {
		if err := s.Create(t.Context(), o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
}

func testCreateGet(t *testing.T, s *store.Store) {
	p := pod("default", "web", map[string]string{"app": "web"})
	mustCreate(t, s, p)
	if p.UID == "" || p.ResourceVersion == "" || p.Generation != 1 || p.CreationTimestamp.IsZero() {
		t.Fatalf("create did not set metadata: uid=%q rv=%q gen=%d created=%v", p.UID, p.ResourceVersion, p.Generation, p.CreationTimestamp)
	}
	var got corev1.Pod
	if err := s.Get(t.Context(), "default", "web", &got); err != nil {
		t.Fatal(err)
	}
	if got.UID != p.UID || got.ResourceVersion != p.ResourceVersion || got.Spec.Containers[0].Image != "localhost/busybox:latest" {
		t.Fatalf("got %+v, want what was created %+v", got.ObjectMeta, p.ObjectMeta)
	}
	if got.Kind != "Pod" || got.APIVersion != "v1" {
		t.Fatalf("stored object lost its type: %q %q", got.APIVersion, got.Kind)
	}
}

func testCreateExists(t *testing.T, s *store.Store) {
	mustCreate(t, s, pod("default", "web", nil))
	err := s.Create(t.Context(), pod("default", "web", nil))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	if !strings.Contains(err.Error(), "pods default/web") {
		t.Fatalf("error does not name the object: %v", err)
	}
	err = s.Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x", ResourceVersion: "5"}})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("create with resourceVersion: got %v, want ErrInvalid", err)
	}
}

func testGetNotFound(t *testing.T, s *store.Store) {
	err := s.Get(t.Context(), "default", "missing", &corev1.Pod{})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func testKeys(t *testing.T, s *store.Store) {
	ctx := t.Context()
	mustCreate(t, s, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}})
	for key, want := range map[string]string{
		s.Prefix() + "/namespaces/shop":           "Namespace",
		s.Prefix() + "/deployments.apps/shop/web": "Deployment",
	} {
		resp, err := s.Client().Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"kind":"`+want+`"`) {
			t.Fatalf("key %s: want one %s, got %v", key, want, resp.Kvs)
		}
	}
}

func testInvalidKeys(t *testing.T, s *store.Store) {
	cases := map[string]store.Object{
		"no name":                   pod("default", "", nil),
		"no namespace":              pod("", "web", nil),
		"slash in name":             pod("default", "a/b", nil),
		"namespace on cluster kind": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "y"}},
	}
	for name, obj := range cases {
		t.Run(name, func(t *testing.T) {
			if err := s.Create(t.Context(), obj); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	if err := s.Create(t.Context(), &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "x"}}); !errors.Is(err, store.ErrUnknownKind) {
		t.Fatalf("unknown kind: got %v", err)
	}
}

func testUpdateCAS(t *testing.T, s *store.Store) {
	ctx := t.Context()
	p := pod("default", "web", nil)
	mustCreate(t, s, p)
	stale := p.DeepCopy()
	p.Labels = map[string]string{"v": "2"}
	if err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.ResourceVersion == stale.ResourceVersion {
		t.Fatal("update did not set a new resourceVersion")
	}
	stale.Labels = map[string]string{"v": "stale"}
	if err := s.Update(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: got %v, want ErrConflict", err)
	}
	var got corev1.Pod
	if err := s.Get(ctx, "default", "web", &got); err != nil {
		t.Fatal(err)
	}
	if got.Labels["v"] != "2" {
		t.Fatalf("stale update changed the object: %v", got.Labels)
	}
	if err := s.Update(ctx, pod("default", "gone", nil)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("update without resourceVersion: got %v, want ErrInvalid", err)
	}
	missing := pod("default", "gone", nil)
	missing.ResourceVersion = p.ResourceVersion
	if err := s.Update(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing object: got %v, want ErrNotFound", err)
	}
	other := got.DeepCopy()
	other.UID = "not-the-uid"
	if err := s.Update(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update with another uid: got %v, want ErrConflict", err)
	}
}

func testUpdateGeneration(t *testing.T, s *store.Store) {
	ctx := t.Context()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
	}
	mustCreate(t, s, d)
	uid, created := d.UID, d.CreationTimestamp
	steps := []struct {
		change  func(*appsv1.Deployment)
		wantGen int64
	}{
		{func(d *appsv1.Deployment) { d.Labels = map[string]string{"a": "b"} }, 1},
		{func(d *appsv1.Deployment) { d.Status.Replicas = 3 }, 1},
		{func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) }, 2},
		{func(d *appsv1.Deployment) { d.UID, d.CreationTimestamp = "", metav1.Time{} }, 2},
	}
	for i, st := range steps {
		st.change(d)
		if err := s.Update(ctx, d); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var got appsv1.Deployment
		if err := s.Get(ctx, "default", "web", &got); err != nil {
			t.Fatal(err)
		}
		if got.Generation != st.wantGen {
			t.Fatalf("step %d: generation %d, want %d", i, got.Generation, st.wantGen)
		}
		if got.UID != uid || !got.CreationTimestamp.Equal(&created) {
			t.Fatalf("step %d: uid or creationTimestamp changed", i)
		}
		d = &got
	}
}

func testDelete(t *testing.T, s *store.Store) {
	ctx := t.Context()
	r, _ := store.ResourceByName("pods")
	p := pod("default", "web", nil)
	mustCreate(t, s, p)
	if err := s.Delete(ctx, r, "default", "web", &metav1.Preconditions{ResourceVersion: ptr.To("1")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with stale resourceVersion: got %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx, r, "default", "web", &metav1.Preconditions{UID: ptr.To(p.UID + "x")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with other uid: got %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx, r, "default", "web", &metav1.Preconditions{UID: &p.UID, ResourceVersion: &p.ResourceVersion}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, r, "default", "web", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: got %v, want ErrNotFound", err)
	}
}

func testListFilters(t *testing.T, s *store.Store) {
	mustCreate(t, s,
		pod("a", "web-1", map[string]string{"app": "web", "tier": "front"}),
		pod("a", "db-1", map[string]string{"app": "db"}),
		pod("b", "web-2", map[string]string{"app": "web"}),
		pod("b", "batch", nil),
	)
	r, _ := store.ResourceByName("pods")
	cases := []struct {
		ns, sel string
		want    []string
	}{
		{"", "", []string{"a/db-1", "a/web-1", "b/batch", "b/web-2"}},
		{"a", "", []string{"a/db-1", "a/web-1"}},
		{"", "app=web", []string{"a/web-1", "b/web-2"}},
		{"", "app in (web,db),tier!=front", []string{"a/db-1", "b/web-2"}},
		{"", "!app", []string{"b/batch"}},
		{"b", "tier", nil},
	}
	for _, tc := range cases {
		sel, err := labels.Parse(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.List(t.Context(), r, store.ListOptions{Namespace: tc.ns, Selector: sel})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(l.Items); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("ns=%q sel=%q: got %v, want %v", tc.ns, tc.sel, got, tc.want)
		}
		if l.ResourceVersion == "" || l.ResourceVersion == "0" {
			t.Errorf("list has no resourceVersion")
		}
	}
}

func names(objs []store.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetNamespace()+"/"+o.GetName())
	}
	return out
}

func testListPages(t *testing.T, s *store.Store) {
	ctx := t.Context()
	r, _ := store.ResourceByName("pods")
	for i := range 10 {
		lbl := map[string]string{"even": fmt.Sprint(i%2 == 0)}
		mustCreate(t, s, pod("default", fmt.Sprintf("p%02d", i), lbl))
	}
	sel := labels.SelectorFromSet(labels.Set{"even": "true"})
	var got []string
	opts := store.ListOptions{Limit: 2, Selector: sel}
	var firstRV string
	for page := 0; ; page++ {
		l, err := s.List(ctx, r, opts)
		if err != nil {
			t.Fatal(err)
		}
		if page == 0 {
			firstRV = l.ResourceVersion
			// A write between pages must not show up: pages are one snapshot.
			mustCreate(t, s, pod("default", "p05a", map[string]string{"even": "true"}))
		} else if l.ResourceVersion != firstRV {
			t.Fatalf("page %d at %s, first page at %s", page, l.ResourceVersion, firstRV)
		}
		if len(l.Items) > 2 {
			t.Fatalf("page %d has %d items, limit 2", page, len(l.Items))
		}
		got = append(got, names(l.Items)...)
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	want := "default/p00,default/p02,default/p04,default/p06,default/p08"
	if strings.Join(got, ",") != want {
		t.Fatalf("pages gave %v, want %s", got, want)
	}
	if _, err := s.List(ctx, r, store.ListOptions{Continue: "garbage"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad continue token: got %v, want ErrInvalid", err)
	}
}

func testListCorrupt(t *testing.T, s *store.Store) {
	ctx := t.Context()
	mustCreate(t, s, pod("default", "good", nil))
	bad := s.Prefix() + "/pods/default/bad"
	if _, err := s.Client().Put(ctx, bad, "{not json"); err != nil {
		t.Fatal(err)
	}
	r, _ := store.ResourceByName("pods")
	_, err := s.List(ctx, r, store.ListOptions{})
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("got %v, want ErrCorrupt naming %s", err, bad)
	}
	foreign := s.Prefix() + "/pods/default/foreign"
	s.Client().Delete(ctx, bad)
	if _, err := s.Client().Put(ctx, foreign, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, r, store.ListOptions{}); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), foreign) {
		t.Fatalf("foreign kind: got %v, want ErrCorrupt naming %s", err, foreign)
	}
}

// TestOpenExternalTLS proves the client TLS flags: the store reaches an etcd
// that demands client certificates only with the right files.
func TestOpenExternalTLS(t *testing.T) {
	eps, f := etcdtest.ExternalTLS(t)
	ctx := t.Context()
	s, err := store.Open(ctx, store.Config{Endpoints: eps, CertFile: f.ClientCert, KeyFile: f.ClientKey, CAFile: f.CA})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(ctx, pod("default", "tls", nil)); err != nil {
		t.Fatalf("create over TLS: %v", err)
	}
	if err := s.Get(ctx, "default", "tls", &corev1.Pod{}); err != nil {
		t.Fatal(err)
	}

	noCert, err := store.Open(ctx, store.Config{Endpoints: eps, CAFile: f.CA, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := noCert.Ping(pctx); err == nil {
		t.Fatal("etcd accepted a client without a certificate")
	}
	if _, err := store.Open(ctx, store.Config{Endpoints: eps, CertFile: "/nonexistent.crt", KeyFile: f.ClientKey}); err == nil || !strings.Contains(err.Error(), "/nonexistent.crt") {
		t.Fatalf("missing cert file: got %v, want an error naming it", err)
	}
}
