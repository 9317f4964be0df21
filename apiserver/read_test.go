package apiserver_test

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
)

func pod(ns, name string, lbls map[string]string, node string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "localhost/web:1"}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func names(pods []corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Namespace + "/" + p.Name
	}
	slices.Sort(out)
	return out
}

func TestDiscoveryListsServedResourcesReadOnly(t *testing.T) {
	ts := newTestServer(t)
	for _, aggregated := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregated=%v", aggregated), func(t *testing.T) {
			dc, err := discovery.NewDiscoveryClientForConfig(ts.config("admin-token"))
			if err != nil {
				t.Fatal(err)
			}
			dc.UseLegacyDiscovery = !aggregated
			_, lists, err := dc.ServerGroupsAndResources()
			if err != nil {
				t.Fatal(err)
			}
			found := map[string][]string{}
			for _, l := range lists {
				for _, r := range l.APIResources {
					found[l.GroupVersion+"/"+r.Name] = r.Verbs
					want := []string{"get", "list", "watch"}
					switch l.GroupVersion {
					case "metrics.k8s.io/v1beta1":
						want = []string{"get", "list"} // as metrics-server serves it
					case "authorization.k8s.io/v1", "authentication.k8s.io/v1":
						want = []string{"create"} // reviews, which store nothing
					}
					if !slices.Equal(r.Verbs, want) {
						t.Errorf("%s/%s verbs %v, want %v", l.GroupVersion, r.Name, r.Verbs, want)
					}
				}
			}
			for _, want := range []string{"v1/pods", "v1/events", "v1/nodes", "apps/v1/deployments", "coordination.k8s.io/v1/leases",
				"metrics.k8s.io/v1beta1/pods", "metrics.k8s.io/v1beta1/nodes"} {
				if _, ok := found[want]; !ok {
					t.Errorf("discovery lacks %s; has %d resources", want, len(found))
				}
			}
		})
	}
}

func TestListWithSelectors(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	for _, p := range []*corev1.Pod{
		pod("a", "web-1", map[string]string{"app": "web", "tier": "front"}, "n1", corev1.PodRunning),
		pod("a", "web-2", map[string]string{"app": "web"}, "n2", corev1.PodPending),
		pod("b", "db-1", map[string]string{"app": "db", "tier": "back"}, "n1", corev1.PodRunning),
		pod("b", "job-1", nil, "", corev1.PodSucceeded),
	} {
		if err := ts.st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	cs := ts.client(t, "admin-token")
	cases := []struct {
		name, ns, labels, fields string
		limit                    int64
		want                     []string
	}{
		{name: "all", want: []string{"a/web-1", "a/web-2", "b/db-1", "b/job-1"}},
		{name: "namespace", ns: "b", want: []string{"b/db-1", "b/job-1"}},
		{name: "equals", labels: "app=web", want: []string{"a/web-1", "a/web-2"}},
		{name: "double equals", labels: "app==db", want: []string{"b/db-1"}},
		{name: "not equals", labels: "app!=web", want: []string{"b/db-1", "b/job-1"}},
		{name: "in", labels: "tier in (front,back)", want: []string{"a/web-1", "b/db-1"}},
		{name: "notin", labels: "app notin (web)", want: []string{"b/db-1", "b/job-1"}},
		{name: "exists", labels: "tier", want: []string{"a/web-1", "b/db-1"}},
		{name: "not exists", labels: "!tier", want: []string{"a/web-2", "b/job-1"}},
		{name: "node", fields: "spec.nodeName=n1", want: []string{"a/web-1", "b/db-1"}},
		{name: "phase", fields: "status.phase!=Running", want: []string{"a/web-2", "b/job-1"}},
		{name: "name", fields: "metadata.name=web-2", want: []string{"a/web-2"}},
		{name: "namespace field", fields: "metadata.namespace=a", labels: "tier", want: []string{"a/web-1"}},
		{name: "etcd with limit", limit: 100, labels: "app=web", fields: "spec.nodeName=n2", want: []string{"a/web-2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: c.labels, FieldSelector: c.fields, Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(list.Items); !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			if list.ResourceVersion == "" {
				t.Fatal("list has no resourceVersion")
			}
		})
	}
}

func TestBadRequestsGetStatusErrors(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	cs := ts.client(t, "admin-token")
	pods := cs.CoreV1().Pods("")
	bad := []metav1.ListOptions{
		{LabelSelector: "app in (web"},
		{LabelSelector: "a=b=c"},
		{FieldSelector: "spec.replicas=3"},
		{FieldSelector: "=x"},
		{Limit: 1 << 40},
		{Continue: "garbage"},
		{Continue: "eyJydiI6MCwic3RhcnQiOiIifQ"},
		{ResourceVersion: "abc"},
		{ResourceVersionMatch: "Sometimes", ResourceVersion: "1"},
		{ResourceVersionMatch: metav1.ResourceVersionMatchExact},
	}
	for _, o := range bad {
		_, err := pods.List(ctx, o)
		if !apierrors.IsBadRequest(err) {
			t.Errorf("list %+v: %v, want 400 BadRequest", o, err)
		}
	}
	_, err := cs.CoreV1().Pods("default").Get(ctx, "nothere", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("get missing pod: %v, want 404", err)
	}
	if _, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/widgets").DoRaw(ctx); !apierrors.IsNotFound(err) {
		t.Fatalf("unknown resource: %v, want 404", err)
	}
}

func TestPaginationIsOneSnapshot(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	var want []string
	for i := range 25 {
		p := pod("default", fmt.Sprintf("p-%02d", i), nil, "", "")
		if err := ts.st.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		want = append(want, "default/"+p.Name)
	}
	cs := ts.client(t, "admin-token")
	var got []string
	opts := metav1.ListOptions{Limit: 10}
	pages := 0
	for {
		list, err := cs.CoreV1().Pods("default").List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, names(list.Items)...)
		if pages == 1 {
			// A write between pages must not show in later pages.
			if err := ts.st.Create(ctx, pod("default", "p-99", nil, "", "")); err != nil {
				t.Fatal(err)
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Fatalf("%d pages with %v, want 3 pages with %v", pages, got, want)
	}
}
