package reconciler

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func TestPodOrdinal(t *testing.T) {
	set := newStatefulSet("web", 3, nil)
	for name, want := range map[string]int{
		"web-0": 0, "web-12": 12, "web-": -1, "web-01": -1, "web--1": -1, "web-1a": -1, "web": -1, "webx-1": -1, "web-0-1": -1, "db-0": -1,
	} {
		if got := podOrdinal(set, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}); got != want {
			t.Errorf("podOrdinal(%q) = %d, want %d", name, got, want)
		}
	}
}

// Owners of a claim by retention policy, as Kubernetes sets them: the set
// when whenDeleted is Delete, the pod of a condemned ordinal instead when
// whenScaled is Delete, and nothing of theirs when both Retain; the owners
// of others stay.
func TestClaimOwners(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-2", UID: "pod-uid"}}
	other := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Backup", Name: "nightly", UID: "b"}
	stale := []metav1.OwnerReference{
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web", UID: "old-set"},
		{APIVersion: "v1", Kind: "Pod", Name: "web-2", UID: "old-pod"},
		other,
	}
	describe := func(refs []metav1.OwnerReference) string {
		s := ""
		for _, r := range refs {
			s += fmt.Sprintf("%s/%s/%s ", r.Kind, r.Name, r.UID)
		}
		return s
	}
	const (
		del = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
		ret = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	)
	for _, tc := range []struct {
		whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType
		condemned               bool
		want                    string
	}{
		{ret, ret, false, "Backup/nightly/b "},
		{ret, ret, true, "Backup/nightly/b "},
		{del, ret, false, "Backup/nightly/b StatefulSet/web/set-uid "},
		{del, ret, true, "Backup/nightly/b StatefulSet/web/set-uid "},
		{ret, del, false, "Backup/nightly/b "},
		{ret, del, true, "Backup/nightly/b Pod/web-2/pod-uid "},
		{del, del, false, "Backup/nightly/b StatefulSet/web/set-uid "},
		{del, del, true, "Backup/nightly/b Pod/web-2/pod-uid "},
	} {
		set := newStatefulSet("web", 2, func(s *appsv1.StatefulSet) {
			s.UID = types.UID("set-uid")
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: tc.whenDeleted, WhenScaled: tc.whenScaled}
		})
		if got := describe(claimOwners(set, stale, 2, pod, tc.condemned)); got != tc.want {
			t.Errorf("whenDeleted %s whenScaled %s condemned %v: owners %q, want %q", tc.whenDeleted, tc.whenScaled, tc.condemned, got, tc.want)
		}
	}
}

// A revision holds the template so that it decodes to the same template,
// and equal templates encode to equal bytes whatever the order of their
// maps.
func TestRevisionData(t *testing.T) {
	a := podTemplate("web", "app:1")
	a.Labels["tier"], a.Labels["zone"] = "db", "a"
	b := podTemplate("web", "app:1")
	b.Labels["zone"], b.Labels["tier"] = "a", "db"
	da, err := revisionData(&a)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := revisionData(&b)
	if string(da) != string(db) {
		t.Fatalf("equal templates, different data:\n%s\n%s", da, db)
	}
	got, err := revisionTemplate(&appsv1.ControllerRevision{Data: runtimeRaw(da)})
	if err != nil {
		t.Fatal(err)
	}
	if !sameTemplate(got, &a) {
		t.Fatalf("decoded template %+v, want %+v", got, a)
	}
	c := podTemplate("web", "app:2")
	dc, _ := revisionData(&c)
	if string(dc) == string(da) {
		t.Fatal("different templates, same data")
	}
}

func runtimeRaw(b []byte) runtime.RawExtension { return runtime.RawExtension{Raw: b} }
