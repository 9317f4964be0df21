package store

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

func podKV(name string, rev int64, label string) *mvccpb.KeyValue {
	v := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"default","name":%q,"labels":{"l":%q}}}`, name, label)
	return &mvccpb.KeyValue{Key: []byte("/r/pods/default/" + name), Value: []byte(v), ModRevision: rev}
}

func TestDecodeCache(t *testing.T) {
	pods, _ := ResourceByName("pods")
	c := newDecodeCache(100)

	a, err := c.decode(pods, podKV("a", 5, "one"))
	if err != nil {
		t.Fatal(err)
	}
	a.SetLabels(map[string]string{"l": "mutated"})
	b, err := c.decode(pods, podKV("a", 5, "one"))
	if err != nil {
		t.Fatal(err)
	}
	if b.GetLabels()["l"] != "one" || b.GetResourceVersion() != "5" {
		t.Fatalf("a caller's change leaked into the cache: %v rv %s", b.GetLabels(), b.GetResourceVersion())
	}
	if b == a {
		t.Fatal("decode returned the same object twice")
	}

	// A new revision is decoded anew, never served from the old entry.
	n, err := c.decode(pods, podKV("a", 9, "two"))
	if err != nil {
		t.Fatal(err)
	}
	if n.GetLabels()["l"] != "two" || n.GetResourceVersion() != "9" {
		t.Fatalf("new revision served stale: %v rv %s", n.GetLabels(), n.GetResourceVersion())
	}
	// An older revision read late does not replace the newer entry.
	if _, err := c.decode(pods, podKV("a", 5, "one")); err != nil {
		t.Fatal(err)
	}
	if c.m["/r/pods/default/a"].rev != 9 {
		t.Fatalf("older revision replaced the newer entry")
	}

	s1, _ := c.get(pods, podKV("a", 9, "two"), true)
	s2, _ := c.get(pods, podKV("a", 9, "two"), true)
	if s1 != s2 {
		t.Fatal("shared reads should return the cached object itself")
	}
}

func TestDecodeCacheBounded(t *testing.T) {
	pods, _ := ResourceByName("pods")
	c := newDecodeCache(50)
	for i := range 500 {
		if _, err := c.decode(pods, podKV(fmt.Sprint("p", i), int64(i+1), "x")); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.m) > 50 {
		t.Fatalf("cache holds %d entries, bound is 50", len(c.m))
	}
	c.forget("/r/pods/default/p499")
	if _, ok := c.m["/r/pods/default/p499"]; ok {
		t.Fatal("forget kept the entry")
	}
}

func TestDecodeKVsParallelKeepsOrder(t *testing.T) {
	pods, _ := ResourceByName("pods")
	c := newDecodeCache(0) // no cache: every value decoded
	var kvs []*mvccpb.KeyValue
	for i := range 2000 {
		kvs = append(kvs, podKV(fmt.Sprintf("p%04d", i), int64(i+1), "x"))
	}
	objs, err := c.decodeKVs(pods, kvs, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		if o.GetName() != fmt.Sprintf("p%04d", i) {
			t.Fatalf("item %d is %s", i, o.GetName())
		}
	}
	kvs[1500] = &mvccpb.KeyValue{Key: []byte("/r/pods/default/bad"), Value: []byte("{"), ModRevision: 1}
	if _, err := c.decodeKVs(pods, kvs, false); err == nil {
		t.Fatal("a corrupt value in a parallel decode was not reported")
	}
}
