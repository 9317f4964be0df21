package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

func podsNamed(t *testing.T, l *store.List) []string {
	t.Helper()
	var out []string
	for _, o := range l.Items {
		out = append(out, o.GetName())
	}
	return out
}

// TestListReadsInPages: a list reads its range a page at a time, all pages
// at one revision: writes made between two pages are not seen, and limits,
// continue tokens and selectors work across pages.
func TestListReadsInPages(t *testing.T) {
	s := etcdtest.NewStore(t)
	defer store.SetListPage(4)()
	for i := range 25 {
		p := etcdtest.SamplePod("default", fmt.Sprintf("p%02d", i))
		p.Labels = map[string]string{"even": fmt.Sprint(i%2 == 0)}
		if err := s.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	pods, _ := store.ResourceByName("pods")
	all, err := s.List(t.Context(), pods, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := podsNamed(t, all); len(got) != 25 || got[0] != "p00" || got[24] != "p24" {
		t.Fatalf("listed %v, want p00…p24", got)
	}
	even, err := s.List(t.Context(), pods, store.ListOptions{Selector: labels.SelectorFromSet(labels.Set{"even": "true"})})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(even.Items); n != 13 {
		t.Fatalf("%d even pods, want 13", n)
	}
	// Pages of a limited list, with a pod made in between: the later pages
	// are read at the first one's revision.
	first, err := s.List(t.Context(), pods, store.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), etcdtest.SamplePod("default", "p99")); err != nil {
		t.Fatal(err)
	}
	var names []string
	names = append(names, podsNamed(t, first)...)
	for cont := first.Continue; cont != ""; {
		next, err := s.List(t.Context(), pods, store.ListOptions{Limit: 10, Continue: cont})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, podsNamed(t, next)...)
		cont = next.Continue
	}
	if len(names) != 25 || strings.Contains(strings.Join(names, ","), "p99") {
		t.Fatalf("paged list %v: want the 25 pods of the first page's revision", names)
	}
}

// TestListOverMessageLimit: a page whose objects together are over gRPC's
// message limit is read in smaller pages instead of failing.
func TestListOverMessageLimit(t *testing.T) {
	endpoints := etcdtest.Embedded(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		MaxCallRecvMsgSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(cli, fmt.Sprintf("/keelson-test/limit-%d/registry", time.Now().UnixNano()), nil)
	defer s.Close()
	for i := range 40 {
		cm := &corev1.ConfigMap{Data: map[string]string{"v": strings.Repeat("x", 4000)}}
		cm.Namespace, cm.Name = "default", fmt.Sprintf("cm%02d", i)
		if err := s.Create(t.Context(), cm); err != nil {
			t.Fatal(err)
		}
	}
	cms, _ := store.ResourceByName("configmaps")
	l, err := s.List(t.Context(), cms, store.ListOptions{})
	if err != nil {
		t.Fatalf("list of 160 KB through a 64 KB message limit: %v", err)
	}
	if len(l.Items) != 40 {
		t.Fatalf("listed %d config maps, want 40", len(l.Items))
	}
}
