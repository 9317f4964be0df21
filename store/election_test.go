package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/etcdtest"
)

// peer returns another store on the same etcd and prefix as s, with a client
// of its own (as another server process would have).
func peer(t *testing.T, s *store.Store) *store.Store {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	p := store.New(cli, s.Prefix(), nil)
	t.Cleanup(func() { p.Close() })
	return p
}

// contender runs Lead in the background and reports its terms.
type contender struct {
	terms  chan context.Context // a term's context, when it starts
	cancel context.CancelFunc
	done   chan struct{}
}

func contend(t *testing.T, s *store.Store, id string) *contender {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &contender{terms: make(chan context.Context, 4), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		err := s.Lead(ctx, store.Election{Name: "test", Identity: id, TTL: 2 * time.Second, RetryPeriod: 50 * time.Millisecond},
			func(term context.Context) {
				c.terms <- term
				<-term.Done()
			})
		if err != nil {
			t.Errorf("Lead %s: %v", id, err)
		}
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *contender) stop(t *testing.T) {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Lead did not return after its context ended")
	}
}

func (c *contender) term(t *testing.T, within time.Duration) context.Context {
	t.Helper()
	select {
	case term := <-c.terms:
		return term
	case <-time.After(within):
		t.Fatalf("no term within %s", within)
		return nil
	}
}

func (c *contender) noTerm(t *testing.T, during time.Duration) {
	t.Helper()
	select {
	case <-c.terms:
		t.Fatal("a second process leads while the first still does")
	case <-time.After(during):
	}
}

func waitLeader(t *testing.T, s *store.Store, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = s.Leader(t.Context(), "test"); err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
	}
	t.Fatalf("leader %q, want %q", got, want)
}

func TestLeadOneAtATime(t *testing.T) {
	s := etcdtest.NewStore(t)
	if id, err := s.Leader(t.Context(), "test"); err != nil || id != "" {
		t.Fatalf("leader before any campaign: %q, %v; want none", id, err)
	}
	a := contend(t, s, "a")
	termA := a.term(t, 5*time.Second)
	waitLeader(t, s, "a")
	b := contend(t, peer(t, s), "b")
	b.noTerm(t, 500*time.Millisecond)

	// a steps down: b leads at once (a resigned), without waiting out the TTL.
	stepped := time.Now()
	a.stop(t)
	if termA.Err() == nil {
		t.Fatal("a's term context still live after it stopped")
	}
	b.term(t, 5*time.Second)
	if d := time.Since(stepped); d > 1500*time.Millisecond {
		t.Errorf("b led %s after a resigned; a resignation should not wait for the 2s lease", d)
	}
	waitLeader(t, s, "b")
}

func TestLeadFencesWrites(t *testing.T) {
	s := etcdtest.NewStore(t)
	a := contend(t, s, "a")
	term := a.term(t, 5*time.Second)
	if !store.Fenced(term) || store.Fenced(t.Context()) {
		t.Fatal("Fenced: want true for a term's context only")
	}
	pod := etcdtest.SamplePod("default", "web")
	if err := s.Create(term, pod); err != nil {
		t.Fatalf("write while leading: %v", err)
	}

	// The term's key goes (as when its lease expires while the leader is
	// paused): its writes must not land, while others' still do.
	if _, err := s.Client().Delete(t.Context(), s.ElectionKey("test")+"/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	pod.Labels = map[string]string{"by": "old-leader"}
	err := s.Update(term, pod)
	if !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("write after the term's key went: %v, want ErrNotLeader", err)
	}
	got := etcdtest.SamplePod("default", "web")
	if err := s.Get(t.Context(), "default", "web", got); err != nil {
		t.Fatal(err)
	}
	if got.Labels["by"] != "" {
		t.Fatalf("a deposed leader's write landed: labels %v", got.Labels)
	}
	if err := s.Update(t.Context(), pod); err != nil {
		t.Fatalf("unfenced write: %v", err)
	}
	// A failed compare-and-swap in a fenced transaction is still a conflict
	// while the term holds: only the fence's failure is ErrNotLeader.
	b := contend(t, peer(t, s), "b")
	termB := b.term(t, 5*time.Second)
	stale := etcdtest.SamplePod("default", "web")
	stale.ResourceVersion = "1"
	if err := s.Update(termB, stale); !errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("stale write while leading: %v, want ErrConflict", err)
	}
}

func TestLeaseLostEndsTerm(t *testing.T) {
	s := etcdtest.NewStore(t)
	var changes []bool
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	terms := make(chan context.Context, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Lead(ctx, store.Election{Name: "test", Identity: "a", TTL: time.Second, RetryPeriod: 50 * time.Millisecond,
			OnLeading: func(on bool) { changes = append(changes, on) }},
			func(term context.Context) {
				terms <- term
				<-term.Done()
			})
	}()
	first := <-terms
	// Revoke every lease: the session's keep-alive fails, so the term ends
	// and a new one starts with a new key.
	leases, err := s.Client().Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Leases {
		if _, err := s.Client().Revoke(t.Context(), l.ID); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-first.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the term went on after its lease was revoked")
	}
	var second context.Context
	select {
	case second = <-terms:
	case <-time.After(10 * time.Second):
		t.Fatal("no new term after the lease was lost")
	}
	if err := s.Create(second, etcdtest.SamplePod("default", "new-term")); err != nil {
		t.Fatalf("write in the new term: %v", err)
	}
	// A leader that has not noticed its term ended yet: its context still
	// carries the old term's fence, without the cancellation.
	unaware := context.WithoutCancel(first)
	if err := s.Create(unaware, etcdtest.SamplePod("default", "old-term")); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("write in the ended term: %v, want ErrNotLeader", err)
	}
	cancel()
	<-done
	want := []bool{true, false, true, false}
	if len(changes) != len(want) {
		t.Fatalf("OnLeading calls %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("OnLeading calls %v, want %v", changes, want)
		}
	}
}

func TestLeadRefusesBadElection(t *testing.T) {
	s := etcdtest.NewStore(t)
	for _, e := range []store.Election{{Name: ""}, {Name: "a/b"}, {Name: "x", TTL: 500 * time.Millisecond}} {
		err := s.Lead(t.Context(), e, func(context.Context) { t.Error("lead ran for an invalid election") })
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Lead(%+v): %v, want ErrInvalid", e, err)
		}
	}
}
