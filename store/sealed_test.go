package store_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/encryption"
	"github.com/keelson/keelson/store/etcdtest"
)

// sealedStores makes stores sharing one key prefix on the shared etcd, as
// servers of one cluster do; each opens with the keys given.
type sealedStores struct {
	t      *testing.T
	prefix string
}

func newSealedStores(t *testing.T) *sealedStores {
	return &sealedStores{t: t, prefix: fmt.Sprintf("/keelson-test/%s-%d/registry", t.Name(), time.Now().UnixNano())}
}

func (ss *sealedStores) open(keys ...encryption.Key) *store.Store {
	t := ss.t
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcdtest.Embedded(t), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(cli, ss.prefix, nil)
	t.Cleanup(func() { s.Close() })
	if len(keys) > 0 {
		s.SetEncryption(parseKeys(t, keys...))
	}
	return s
}

func parseKeys(t *testing.T, keys ...encryption.Key) *encryption.Keys {
	t.Helper()
	ks, err := encryption.Parse(encryption.Marshal(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func secretWith(ns, name, value string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"password": []byte(value)}}
}

// raw returns what etcd holds for a Secret, read with the plain etcd client.
func raw(t *testing.T, s *store.Store, ns, name string) []byte {
	t.Helper()
	resp, err := s.Client().Get(t.Context(), s.Prefix()+"/secrets/"+ns+"/"+name)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw read of secret %s/%s: %v %v", ns, name, resp, err)
	}
	return resp.Kvs[0].Value
}

// leaks says whether b holds value or its base64 form (how JSON carries a
// Secret's data).
func leaks(b []byte, value string) bool {
	return bytes.Contains(b, []byte(value)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(value))))
}

// Secrets are ciphertext in etcd, read with the raw client and in a
// snapshot of etcd's database, while the store reads them back plain in
// Get, List and watches (deletion included); other kinds stay plain.
func TestSecretsSealedInEtcd(t *testing.T) {
	ss := newSealedStores(t)
	s := ss.open(encryption.NewKey("k1"))
	value := "s3cret-" + rand.String(12)
	cmValue := "visible-" + rand.String(12)

	w, err := s.Watch(t.Context(), secrets(t), store.WatchOptions{Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := s.Create(t.Context(), secretWith("shop", "db", value)); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cfg"}, Data: map[string]string{"k": cmValue}}); err != nil {
		t.Fatal(err)
	}

	stored := raw(t, s, "shop", "db")
	if !encryption.IsSealed(stored) || leaks(stored, value) {
		t.Fatalf("etcd holds the secret as %q", stored)
	}
	if name, _ := encryption.KeyName(stored); name != "k1" {
		t.Errorf("sealed with key %q, want k1", name)
	}

	var got corev1.Secret
	if err := s.Get(t.Context(), "shop", "db", &got); err != nil || string(got.Data["password"]) != value {
		t.Fatalf("Get = %q %v", got.Data["password"], err)
	}
	l, err := s.List(t.Context(), secrets(t), store.ListOptions{Namespace: "shop"})
	if err != nil || len(l.Items) != 1 || string(l.Items[0].(*corev1.Secret).Data["password"]) != value {
		t.Fatalf("List = %v %v", l, err)
	}
	ev := <-w.ResultChan()
	if sec, ok := ev.Object.(*corev1.Secret); ev.Type != watch.Added || !ok || string(sec.Data["password"]) != value {
		t.Fatalf("watch event %v %#v", ev.Type, ev.Object)
	}
	if err := s.Delete(t.Context(), secrets(t), "shop", "db", nil); err != nil {
		t.Fatal(err)
	}
	ev = <-w.ResultChan()
	if sec, ok := ev.Object.(*corev1.Secret); ev.Type != watch.Deleted || !ok || string(sec.Data["password"]) != value {
		t.Fatalf("watch event %v %#v", ev.Type, ev.Object)
	}

	// The snapshot is taken after the delete: the secret's revisions are
	// still in etcd's history, sealed.
	snap := snapshot(t, s)
	if leaks(snap, value) {
		t.Error("an etcd snapshot holds the secret's value")
	}
	if !leaks(snap, cmValue) {
		t.Error("an etcd snapshot lacks the config map's value: the search above proves nothing")
	}
}

func secrets(t *testing.T) store.Resource {
	t.Helper()
	r, err := store.ResourceByName("secrets")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func snapshot(t *testing.T, s *store.Store) []byte {
	t.Helper()
	rc, err := s.Client().Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every Secret of ns through s, by name and value.
func readAll(t *testing.T, s *store.Store, ns string) (map[string]string, error) {
	t.Helper()
	l, err := s.List(t.Context(), secrets(t), store.ListOptions{Namespace: ns})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, o := range l.Items {
		out[o.GetName()] = string(o.(*corev1.Secret).Data["password"])
	}
	return out, nil
}

// Rotation: a store given a new key first reads what the old key sealed;
// Reseal seals every Secret again with the new key (and the plain ones a
// cluster wrote before it had keys), after which a store holding only the
// new key reads them all, and the old key's check is gone.
func TestSealedKeyRotation(t *testing.T) {
	ss := newSealedStores(t)
	k1, k2 := encryption.NewKey("k1"), encryption.NewKey("k2")
	plain := ss.open()
	want := map[string]string{}
	for i := range 5 {
		name, value := fmt.Sprintf("s%d", i), "v-"+rand.String(10)
		w := ss.open(k1)
		if i == 0 {
			w = plain // written before the cluster had keys
		}
		if err := w.Create(t.Context(), secretWith("app", name, value)); err != nil {
			t.Fatal(err)
		}
		want[name] = value
	}
	if encryption.IsSealed(raw(t, plain, "app", "s0")) {
		t.Fatal("a store without keys sealed a value")
	}
	if _, err := readAll(t, plain, "app"); !errors.Is(err, store.ErrSealed) {
		t.Fatalf("a store without keys read sealed secrets: %v, want ErrSealed", err)
	}
	old := ss.open(k1)
	if err := old.CheckEncryptionKeys(t.Context()); err != nil {
		t.Fatal(err)
	}

	rotated := ss.open(k2, k1)
	if err := rotated.CheckEncryptionKeys(t.Context()); err != nil {
		t.Fatalf("a store holding the old key as its second: %v", err)
	}
	if got, err := readAll(t, rotated, "app"); err != nil || !maps.Equal(got, want) {
		t.Fatalf("before resealing: %v %v, want %v", got, err, want)
	}
	res, err := rotated.Reseal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Sealed != 5 || res.Left != 0 || !slices.Equal(res.Dropped, []string{"k1"}) {
		t.Fatalf("Reseal = %+v, want 5 sealed, k1 dropped", res)
	}
	for name := range want {
		if k, _ := encryption.KeyName(raw(t, rotated, "app", name)); k != "k2" {
			t.Errorf("secret %s sealed with %q after Reseal, want k2", name, k)
		}
	}
	if res, err := rotated.Reseal(t.Context()); err != nil || res.Sealed != 0 {
		t.Errorf("a second Reseal = %+v %v, want nothing to do", res, err)
	}

	onlyNew := ss.open(k2)
	if err := onlyNew.CheckEncryptionKeys(t.Context()); err != nil {
		t.Fatalf("the new key alone, after resealing: %v", err)
	}
	if got, err := readAll(t, onlyNew, "app"); err != nil || !maps.Equal(got, want) {
		t.Fatalf("with the new key alone: %v %v, want %v", got, err, want)
	}
}

// A store refuses to work with a cluster whose Secrets another server seals
// with a key it lacks, or holds with other bytes, naming the key.
func TestCheckEncryptionKeys(t *testing.T) {
	ss := newSealedStores(t)
	k1 := encryption.NewKey("k1")
	first := ss.open(k1)
	if err := first.CheckEncryptionKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := ss.open(k1).CheckEncryptionKeys(t.Context()); err != nil {
		t.Fatalf("a second server with the same key: %v", err)
	}
	for _, tc := range []struct {
		name string
		keys []encryption.Key
		want string
	}{
		{"no keys", nil, `key "k1" and this server has no --encryption-key-file`},
		{"another key", []encryption.Key{encryption.NewKey("k9")}, `key "k1", not in the encryption keys`},
		{"other bytes, same name", []encryption.Key{encryption.NewKey("k1")}, `key "k1", not in the encryption keys`},
	} {
		err := ss.open(tc.keys...).CheckEncryptionKeys(t.Context())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		// The server stops on a mismatch and tries again on anything else.
		if !errors.Is(err, store.ErrSealed) {
			t.Errorf("%s: %v is not ErrSealed", tc.name, err)
		}
	}
}

// BenchmarkSecrets measures what sealing costs: Secrets (~1 KB of data)
// created, and 1,000 of them listed with every one opened and decoded anew,
// sealed and plain side by side on one etcd.
func BenchmarkSecrets(b *testing.B) {
	data := map[string][]byte{"tls.crt": bytes.Repeat([]byte("c"), 700), "tls.key": bytes.Repeat([]byte("k"), 300)}
	secret := func(ns, name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	}
	keys, err := encryption.Parse(encryption.Marshal(encryption.NewKey("k1")))
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"sealed", "plain"} {
		s := etcdtest.NewStore(b)
		if mode == "sealed" {
			s.SetEncryption(keys)
		}
		ctx := context.Background()
		b.Run("create/"+mode, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if err := s.Create(ctx, secret("bench", fmt.Sprintf("s-%d", i))); err != nil {
					b.Fatal(err)
				}
			}
		})
		const n = 1000
		var ops []store.Op
		for i := range n {
			ops = append(ops, store.CreateOp(secret("list", fmt.Sprintf("s-%d", i))))
		}
		if err := s.Txn(ctx, ops...); err != nil {
			b.Fatal(err)
		}
		r, _ := store.ResourceByName("secrets")
		b.Run("list1k-cold/"+mode, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				fresh := store.New(s.Client(), s.Prefix(), nil) // an empty decode cache
				if mode == "sealed" {
					fresh.SetEncryption(keys)
				}
				b.StartTimer()
				l, err := fresh.List(ctx, r, store.ListOptions{Namespace: "list"})
				if err != nil || len(l.Items) != n {
					b.Fatalf("%v, %d items", err, len(l.Items))
				}
			}
		})
	}
}
