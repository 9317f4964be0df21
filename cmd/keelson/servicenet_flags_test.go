package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keelson/keelson/gitsync"
)

// The service ranges of the server's flags reach every source's Syncer.
func TestServiceRangeFlags(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		cidr, port string
		err        string
	}{
		{"defaults", nil, "10.43.0.0/16", "30000-32767", ""},
		{"given", []string{"--service-cidr", "10.96.0.0/24", "--service-node-port-range", "31000-31009"}, "10.96.0.0/24", "31000-31009", ""},
		{"a CIDR too small", []string{"--service-cidr", "10.96.0.0/30"}, "", "", "at least a /28"},
		{"not a range", []string{"--service-node-port-range", "31000"}, "", "", "want FIRST-LAST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &serverOptions{}
			cmd := &cobra.Command{}
			o.addFlags(cmd)
			err := cmd.ParseFlags(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sources := []gitsync.Config{{Name: "apps", Repo: t.TempDir()}}
			o.prepareSources(sources)
			loop, err := gitsync.New(sources[0], nil, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := loop.Syncer.ServiceCIDR.String(); got != tc.cidr {
				t.Errorf("Syncer.ServiceCIDR %s, want %s", got, tc.cidr)
			}
			if got := loop.Syncer.NodePorts.String(); got != tc.port {
				t.Errorf("Syncer.NodePorts %s, want %s", got, tc.port)
			}
		})
	}
}

// keelson plan checks new Services against the service CIDR of its flag:
// an address outside it is an error (exit 2), inside it a change (exit 1).
func TestPlanServiceCIDRFlag(t *testing.T) {
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\nspec:\n  clusterIP: 10.96.0.5\n  ports: [{port: 5432}]\n"
	repo := planRepoDir(t, map[string]string{"README.md": "deploy\n"}, map[string]string{"deploy/db.yaml": svc})
	out, stderr, code := keelsonPlan(t, "--repo", repo, "--base", "main", "--head", "pr", "--path", "deploy")
	if code != 2 || !strings.Contains(out, "deploy/db.yaml:5:14: Service shop/db: spec.clusterIP: 10.96.0.5 is outside the service CIDR 10.43.0.0/16") {
		t.Errorf("default CIDR: exit %d, want 2 and the address refused:\n%s%s", code, out, stderr)
	}
	out, stderr, code = keelsonPlan(t, "--repo", repo, "--base", "main", "--head", "pr", "--path", "deploy", "--service-cidr", "10.96.0.0/16")
	if code != 1 || !strings.Contains(out, "gets cluster IP 10.96.0.5") {
		t.Errorf("--service-cidr 10.96.0.0/16: exit %d, want 1 and the address given:\n%s%s", code, out, stderr)
	}
	if _, stderr, code = keelsonPlan(t, "--repo", repo, "--base", "main", "--service-cidr", "10.96.0.0"); code != 2 || !strings.Contains(stderr, "--service-cidr") {
		t.Errorf("a bad --service-cidr: exit %d, want 2:\n%s", code, stderr)
	}
}
