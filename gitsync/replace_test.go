package gitsync

import (
	"errors"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

func jobYAML(image, annotations string) string {
	return `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: default` + annotations + `
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: ` + image + `
`
}

// TestReplaceOnChange: a Job's pod template cannot change on the stored
// Job: the commit is refused at the Job's line, and nothing of it is
// applied; annotated keelson.dev/replace-on-change, the Job is deleted and
// created again (a new uid), and a later sync leaves it alone.
func TestReplaceOnChange(t *testing.T) {
	r := newRepo(t)
	s := newSyncer(t, "apps")
	src := NewLocalGit(r.dir, "main")
	r.commit(map[string]string{"job.yaml": jobYAML("localhost/migrate:1", "")})
	wantCounts(t, mustApply(t, s, src), 1, 0, 0, 0)
	get := func() *batchv1.Job {
		j := &batchv1.Job{}
		if err := s.Store.Get(t.Context(), "default", "migrate", j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	first := get()

	r.commit(map[string]string{"job.yaml": jobYAML("localhost/migrate:2", ""), "cm.yaml": configMap("cfg", "1")})
	res, err := syncNow(t, s, src)
	if !errors.Is(err, ErrInvalid) || len(res.Errors) != 1 ||
		!strings.HasPrefix(res.Errors[0].Error(), "job.yaml:1:") || !strings.Contains(res.Errors[0].Error(), "spec.template cannot change once the object exists; annotate it keelson.dev/replace-on-change") {
		t.Fatalf("err %v, errors %q", err, res.Errors)
	}
	if j := get(); j.ResourceVersion != first.ResourceVersion {
		t.Errorf("the refused commit wrote the Job")
	}

	annotated := "\n  annotations:\n    keelson.dev/replace-on-change: \"true\""
	r.commit(map[string]string{"job.yaml": jobYAML("localhost/migrate:2", annotated)})
	res = mustApply(t, s, src)
	if res.Replaced != 1 || res.Updated != 1 || res.Created != 1 {
		t.Fatalf("replaced %d, updated %d, created %d; changes %+v", res.Replaced, res.Updated, res.Created, res.Changes)
	}
	second := get()
	if second.UID == first.UID || second.Spec.Template.Spec.Containers[0].Image != "localhost/migrate:2" || second.Labels[LabelSource] != "apps" {
		t.Errorf("after the replacement: uid %s (was %s), image %s, labels %v", second.UID, first.UID,
			second.Spec.Template.Spec.Containers[0].Image, second.Labels)
	}
	wantCounts(t, mustApply(t, s, src), 0, 0, 0, 2)
	if get().UID != second.UID {
		t.Error("a sync of the same revision replaced the Job again")
	}
}
