package schema

import (
	"strings"
	"testing"
)

// TestJobNameLengths: Kubernetes refuses Job names over 63 characters (the
// name becomes a label value on the Job's pods) and CronJob names over 52 (its
// Jobs add an 11-character suffix).
func TestJobNameLengths(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	job := func(name string) string {
		return "apiVersion: batch/v1\nkind: Job\nmetadata: {name: " + name + "}\nspec:\n  template:\n" + jobPodSpec + "\n"
	}
	cron := func(name string) string {
		return "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: " + name + "}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{name: app, image: busybox}]\n"
	}
	cases := []struct {
		name, doc, wantErr string
	}{
		{"job 63", job(strings.Repeat("j", 63)), ""},
		{"job 64", job(strings.Repeat("j", 64)), "metadata.name: must be at most 63 characters"},
		{"cronjob 52", cron(strings.Repeat("c", 52)), ""},
		{"cronjob 53", cron(strings.Repeat("c", 53)), "metadata.name: must be at most 52 characters"},
	}
	for _, tc := range cases {
		_, errs := s.ValidateFile("job.yaml", []byte(tc.doc))
		got := ""
		if len(errs) > 0 {
			got = errs.Error()
		}
		if (tc.wantErr == "") != (got == "") || !strings.Contains(got, tc.wantErr) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.wantErr)
		}
	}
}
