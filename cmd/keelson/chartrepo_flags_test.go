package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keelson/keelson/gitsync"
)

// The chart repositories of --chart-repository reach every source's
// Renderer, and a URL that is not one is refused at start.
func TestChartRepositoryFlag(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		fetcher bool
		err     string
	}{
		{name: "none", fetcher: false},
		{name: "two", args: []string{"--chart-repository", "https://charts.example.com/stable", "--chart-repository", "oci://registry.example.com/charts"}, fetcher: true},
		{name: "not a repository URL", args: []string{"--chart-repository", "ftp://charts.example.com"}, err: `chart repository "ftp://charts.example.com": want an http://, https:// or oci:// URL`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &serverOptions{}
			cmd := &cobra.Command{}
			o.addFlags(cmd)
			if err := cmd.ParseFlags(append(tc.args, "--data-dir", t.TempDir())); err != nil {
				t.Fatal(err)
			}
			err := o.makeCharts(nil)
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
			r := loop.Syncer.Renderer
			switch {
			case tc.fetcher && (r == nil || r.Charts != o.charts || o.charts == nil):
				t.Errorf("the sync's Renderer %v does not fetch from the server's chart repositories", r)
			case !tc.fetcher && r != nil && r.Charts != nil:
				t.Errorf("no --chart-repository, yet the sync's Renderer fetches charts")
			}
		})
	}
}
