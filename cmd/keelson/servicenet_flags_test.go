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
