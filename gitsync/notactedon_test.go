package gitsync

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keelsonv1alpha1 "github.com/keelson/keelson/api/v1alpha1"
	"github.com/keelson/keelson/store"
)

// podTemplate is a PodTemplate, a kind keelson stores and does not act on.
func podTemplate(ns, name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: PodTemplate
metadata: {name: %[2]s, namespace: %[1]s}
template:
  spec:
    containers:
    - {name: web, image: "localhost/web:1"}
`, ns, name)
}

func networkPolicy(ns, name string) string {
	return fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  podSelector: {matchLabels: {app: %[2]s}}
  policyTypes: [Ingress]
`, ns, name)
}

// TestSyncStatusNamesKindsNotActedOn: a revision holding objects keelson
// stores but does not act on is applied (Ready stays True) and its Ready
// message and the loop's Status name them, also when a
// later revision leaves them unchanged; once they leave Git the message is
// plain again.
func TestSyncStatusNamesKindsNotActedOn(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	files := map[string]string{
		"web.yaml":      deployment("default", "web", 1),
		"template.yaml": podTemplate("default", "web"),
		"policy.yaml":   networkPolicy("default", "deny"),
		"cfg.yaml":      configMap("cfg", "1"),
	}
	c1 := r.commit(files)
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "shop")}
	st := l.Syncer.Store
	names := []string{"NetworkPolicy default/deny", "PodTemplate default/web"}
	check := func(rev string) {
		t.Helper()
		if err := l.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
		want := "applied revision " + rev[:12] + ": 2 objects keelson does not act on yet: NetworkPolicy default/deny, PodTemplate default/web"
		ready := condition(getSync(t, st, "shop"), keelsonv1alpha1.ConditionReady)
		if ready.Status != metav1.ConditionTrue || ready.Message != want {
			t.Errorf("Ready %s %q, want True %q", ready.Status, ready.Message, want)
		}
		for _, typ := range []string{keelsonv1alpha1.ConditionStalled, keelsonv1alpha1.ConditionReconciling} {
			if c := condition(getSync(t, st, "shop"), typ); c.Status != metav1.ConditionFalse || c.Message != "applied revision "+rev[:12] {
				t.Errorf("%s %s %q, want False and the revision alone", typ, c.Status, c.Message)
			}
		}
		if got := l.Status(); !slices.Equal(got.NotActedOn, names) || got.Message != want {
			t.Errorf("loop status names %q, message %q", got.NotActedOn, got.Message)
		}
	}
	check(c1)
	// Only the ConfigMap changes: the others are unchanged, still named.
	check(r.commit(map[string]string{"cfg.yaml": configMap("cfg", "2")}))

	c3 := r.commit(map[string]string{"template.yaml": "", "policy.yaml": ""})
	if err := l.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if ready := condition(getSync(t, st, "shop"), keelsonv1alpha1.ConditionReady); ready.Message != "applied revision "+c3[:12] {
		t.Errorf("Ready %q once the objects left Git", ready.Message)
	}
	if got := l.Status().NotActedOn; len(got) != 0 {
		t.Errorf("loop status still names %q", got)
	}
}

// TestSyncEventNamesKindsNotActedOn: the Event of an applied revision
// names its objects keelson does not act on after its counts.
func TestSyncEventNamesKindsNotActedOn(t *testing.T) {
	ctx := t.Context()
	r := newRepo(t)
	r.commit(map[string]string{"template.yaml": podTemplate("default", "web"), "cfg.yaml": configMap("cfg", "1")})
	l := &Loop{Source: NewLocalGit(r.dir, "main"), Syncer: newSyncer(t, "shop")}
	st := l.Syncer.Store
	go l.Run(ctx)
	evs, _ := store.ResourceByName("events")
	waitFor(t, "an event naming the pod template", func() bool {
		list, err := st.List(ctx, evs, store.ListOptions{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			ev := o.(*corev1.Event)
			if ev.InvolvedObject.Kind == "Sync" && ev.InvolvedObject.Name == "shop" && ev.Reason == ReasonSucceeded &&
				strings.HasSuffix(ev.Message, ": 2 created, 0 updated, 0 deleted, 0 unchanged; 1 object keelson does not act on yet: PodTemplate default/web") {
				return true
			}
		}
		return false
	})
}

func TestNotActedOnClause(t *testing.T) {
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("Job shop/j%d", i))
		}
		return out
	}
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{name: "none", want: ""},
		{name: "one", names: []string{"Ingress shop/web"}, want: "1 object keelson does not act on yet: Ingress shop/web"},
		{name: "up to the bound, all named", names: many(maxNotActedOnNamed),
			want: "5 objects keelson does not act on yet: Job shop/j0, Job shop/j1, Job shop/j2, Job shop/j3, Job shop/j4"},
		{name: "past the bound, counted", names: many(maxNotActedOnNamed + 2),
			want: "7 objects keelson does not act on yet: Job shop/j0, Job shop/j1, Job shop/j2, Job shop/j3, Job shop/j4 and 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notActedOnClause(tt.names); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}
