package gitsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/schema"
	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// crashChildEnv makes the test binary a sync process that applies one
// revision in small transactions, printing a line after each, until the
// test kills it.
const crashChildEnv = "KEELSON_GITSYNC_CRASH_CHILD"

// crashChild is the process TestCrashDuringStagedApply kills: it syncs the
// commit $REV of the repository $REPO into the store at $ENDPOINTS/$PREFIX,
// 25 objects per transaction, pausing a little between transactions so that
// the kill lands at varied points.
func crashChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Getenv("ENDPOINTS"), ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	sch, err := schema.Default()
	if err != nil {
		fail(err)
	}
	st := store.New(cli, os.Getenv("PREFIX"), nil)
	s := &Syncer{Name: "crash", Store: st, Schema: sch, Prune: true, MaxTxnOps: 25}
	s.afterTxn = func(n int) {
		fmt.Printf("txn %d\n", n)
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	}
	l := &Loop{Source: NewLocalGit(os.Getenv("REPO"), os.Getenv("REV")), Syncer: s}
	fmt.Println("start")
	if err := l.SyncOnce(context.Background()); err != nil {
		fail(err)
	}
	fmt.Println("done")
	os.Exit(0)
}

// crashRevisions commits three revisions: A (300 ConfigMaps), B (A with 100
// deleted, 100 changed, 100 added in a new namespace) and C on top of B, which
// adds an object but has a broken file, so it must never apply.
func crashRevisions(t *testing.T) (r *testRepo, a, b, c string, wantA, wantB map[string]string) {
	r = newRepo(t)
	files := map[string]string{}
	wantA = map[string]string{}
	for i := range 30 {
		var docs []string
		for j := range 10 {
			docs = append(docs, configMap(fmt.Sprintf("cm-%02d-%d", i, j), "a"))
			wantA[fmt.Sprintf("default/cm-%02d-%d", i, j)] = "a"
		}
		files[fmt.Sprintf("a/%02d.yaml", i)] = strings.Join(docs, "---\n")
	}
	a = r.commit(files)

	files = map[string]string{}
	wantB = map[string]string{}
	for i := range 30 {
		var docs []string
		for j := range 10 {
			name, value := fmt.Sprintf("cm-%02d-%d", i, j), "a"
			switch {
			case i < 10:
				continue // deleted
			case i < 20:
				value = "b" // changed
			}
			docs = append(docs, configMap(name, value))
			wantB["default/"+name] = value
		}
		files[fmt.Sprintf("a/%02d.yaml", i)] = strings.Join(docs, "---\n")
		if i < 10 {
			files[fmt.Sprintf("a/%02d.yaml", i)] = ""
		}
	}
	var docs []string
	docs = append(docs, namespace("fresh"))
	for j := range 100 {
		cm := strings.Replace(configMap(fmt.Sprintf("new-%03d", j), "b"), "metadata:\n", "metadata:\n  namespace: fresh\n", 1)
		docs = append(docs, cm)
		wantB[fmt.Sprintf("fresh/new-%03d", j)] = "b"
	}
	files["b/fresh.yaml"] = strings.Join(docs, "---\n")
	b = r.commit(files)

	c = r.commit(map[string]string{
		"c/extra.yaml":  configMap("from-c", "c"),
		"c/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata: 7\n",
	})
	return r, a, b, c, wantA, wantB
}

// configMapsOf returns "namespace/name" → data.key of the ConfigMaps of sync
// name in st.
func configMapsOf(t *testing.T, st *store.Store, name string) map[string]string {
	t.Helper()
	res, _ := store.ResourceByName("configmaps")
	l, err := st.List(t.Context(), res, store.ListOptions{Selector: labels.SelectorFromSet(labels.Set{LabelSource: name})})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range l.Items {
		cm := o.(*corev1.ConfigMap)
		out[cm.Namespace+"/"+cm.Name] = cm.Data["key"]
	}
	return out
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestCrashDuringStagedApply kills (SIGKILL) a process in the middle of
// applying a revision too big for one transaction, at a different point each
// round, while the branch has already moved on to a broken commit. A fresh
// sync must then converge to exactly the interrupted revision — every
// object, no leftovers of the old one, the pending mark gone — and apply
// nothing of the broken commit.
func TestCrashDuringStagedApply(t *testing.T) {
	r, a, b, c, wantA, wantB := crashRevisions(t)
	endpoints := etcdtest.Embedded(t)
	partial := 0
	// Kill after the k-th line the process prints: 0 is "start", before the
	// pending mark or any write; k is "txn k". B takes 13 transactions.
	for round, killAfter := range []int{0, 1, 4, 8, 12} {
		st := etcdtest.NewStoreAt(t, endpoints)
		first := &Loop{Source: NewLocalGit(r.dir, a), Syncer: &Syncer{Name: "crash", Store: st, Schema: testSchema(t), Prune: true, MaxTxnOps: 16384}}
		if err := first.SyncOnce(t.Context()); err != nil {
			t.Fatal(err)
		}

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"=1", "ENDPOINTS="+strings.Join(endpoints, ","),
			"PREFIX="+st.Prefix(), "REPO="+r.dir, "REV="+b)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		lines, finished := -1, false
		for sc.Scan() {
			lines++
			if sc.Text() == "done" {
				finished = true
				break
			}
			if lines >= killAfter {
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		_ = cmd.Wait()
		got := configMapsOf(t, st, "crash")
		pending, err := first.Syncer.PendingRevision(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// B began when its mark or any of its writes is in the store; then
		// it must be finished. Otherwise A stays.
		began := pending != "" || !sameMap(got, wantA)
		want, wantApplied := wantA, a
		if began {
			want, wantApplied = wantB, b
		}
		if pending != "" && !sameMap(got, wantB) {
			partial++
		}
		t.Logf("round %d: killed after line %d (finished %v): %d ConfigMaps, pending %q", round, killAfter, finished, len(got), shortID(pending))

		// A new process: the branch is at the broken commit C.
		l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: &Syncer{Name: "crash", Store: st, Schema: testSchema(t), Prune: true, MaxTxnOps: 25}}
		err = l.SyncOnce(t.Context())
		if !errorsIsInvalid(err) {
			t.Fatalf("round %d: sync of the broken head: %v, want ErrInvalid", round, err)
		}
		if got := configMapsOf(t, st, "crash"); !sameMap(got, want) {
			t.Fatalf("round %d: after restart the store holds %d ConfigMaps, not the %d of %s (began %v): %s",
				round, len(got), len(want), shortID(wantApplied), began, firstDifference(got, want))
		}
		s := &keelsonv1alpha1.Sync{}
		if err := st.Get(t.Context(), "", "crash", s); err != nil {
			t.Fatal(err)
		}
		if s.Status.PendingRevision != "" || s.Status.LastAppliedRevision != wantApplied || s.Status.LastAttemptedRevision != c {
			t.Fatalf("round %d: sync status: pending %q, applied %s (want %s), attempted %s (want C %s)",
				round, s.Status.PendingRevision, s.Status.LastAppliedRevision, wantApplied, s.Status.LastAttemptedRevision, c)
		}
	}
	if partial == 0 {
		t.Fatalf("no round killed the process in the middle of the revision: the test proved nothing")
	}
}

func errorsIsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

func shortID(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func firstDifference(got, want map[string]string) string {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return fmt.Sprintf("%s is %q, want %q", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return k + " should be gone"
		}
	}
	return "none"
}
