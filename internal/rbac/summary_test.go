package rbac

import (
	"slices"
	"testing"
)

func TestSummarize(t *testing.T) {
	read := []string{"get", "list", "watch"}
	var changes []Change
	for _, r := range []string{"pods", "services", "configmaps", "events", "endpoints", "limitranges", "serviceaccounts"} {
		changes = append(changes, Change{Subject: `group "devs"`, Verbs: read, Resource: r, Namespace: "shop"})
	}
	changes = append(changes,
		Change{Subject: `group "devs"`, Gains: true, Verbs: read, Resource: "secrets", Namespace: "shop"},
		Change{Subject: `user "bob"`, Gains: true, Verbs: read, Resource: "pods", Namespace: "shop"},
		Change{Subject: `user "bob"`, Gains: true, Verbs: []string{"get"}, NonResourceURL: "/metrics"})
	var got []string
	for _, s := range Summarize(changes) {
		got = append(got, s.Message)
	}
	want := []string{
		`group "devs" gains read of secrets in namespace shop`,
		`user "bob" gains get of /metrics`,
		`group "devs" loses read of 7 resources in namespace shop: pods, services, configmaps, events, endpoints and 2 more`,
		`user "bob" gains read of pods in namespace shop`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Summarize:\n got %q\nwant %q", got, want)
	}
}
